"""Standard metrics, CC-Metrics, lesion/instance metrics and COCO mask AP."""
