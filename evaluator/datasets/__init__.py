"""Dataset adapters (one per on-disk format), phantom generators, splits and checks.

The public entry points live in their modules and are imported from there:
``base`` (cases, the adapter protocol, ``open_dataset``), ``imageio`` (``read_image``, JSON and
CSV tables), ``geometry`` (``image_geometry``, ``check_same_geometry``), ``labels``
(``label_array``, the one label check), ``annotations`` (2D instances), ``registry``
(``datasets.yaml``, the adapter table), ``splits``, ``check`` and ``phantoms``. Importing this
package loads nothing else (no SimpleITK, no numpy).
"""

__all__: list[str] = []
