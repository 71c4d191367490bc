PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE entries (
	id INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	image VARCHAR(500), 
	image_digest VARCHAR(200), 
	manifest TEXT, 
	created_at DATETIME, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
INSERT INTO entries VALUES(1,'alpha','ccbench/alpha:latest','sha256:abababababababababababababababababababababababababababababababab','{"name": "alpha", "team": "A", "image": "ccbench/alpha:latest"}','2026-12-01 13:25:53.754766');
INSERT INTO entries VALUES(2,'beta','ccbench/beta:latest','sha256:abababababababababababababababababababababababababababababababab','{"name": "beta", "team": "B", "image": "ccbench/beta:latest"}','2026-12-01 13:25:54.305222');
INSERT INTO entries VALUES(3,'threshold','ccbench/threshold:latest','sha256:abababababababababababababababababababababababababababababababab','{"name": "threshold", "team": "ccbench baselines", "image": "ccbench/threshold:latest"}','2026-12-01 13:25:54.482107');
CREATE TABLE runs (
	id INTEGER NOT NULL, 
	name VARCHAR(300) NOT NULL, 
	task VARCHAR(100) NOT NULL, 
	split VARCHAR(100) NOT NULL, 
	entry_id INTEGER, 
	image_digest VARCHAR(200), 
	dataset_fingerprint VARCHAR(200), 
	ccbench_version VARCHAR(50), 
	parameters TEXT NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	status VARCHAR(20) NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name), 
	FOREIGN KEY(entry_id) REFERENCES entries (id)
);
INSERT INTO runs VALUES(1,'alpha--hecktor-phantom','hecktor-phantom','all',1,'sha256:abababababababababababababababababababababababababababababababab','sha256:8d7295b7be28afe24ebec092880276b615c44c065fbabf3d5796f2fa183c71f0','0.1.0','{"data_root": null, "pred": "/tmp/mkfix/out/pred/alpha", "profile": {"aggregates": ["aggregated_dice"], "metrics": ["dice", "hd95", "nsd", "cc_dice", "cc_hd95", "cc_nsd"], "name": "hecktor", "negative_case_metrics": null, "params": {"cc_worst_distance_mm": 50.0, "lesion_match": "any_overlap", "nsd_tolerance_mm": 2.0}, "ranking": {"aggregate": "mean", "primary": "dice", "tiebreak": "hd95", "weights": {}}, "resample_extent": true}}','2026-12-01 13:25:53.906232','2026-12-01 13:25:54.286534','finished');
INSERT INTO runs VALUES(2,'beta--hecktor-phantom','hecktor-phantom','all',2,'sha256:abababababababababababababababababababababababababababababababab','sha256:8d7295b7be28afe24ebec092880276b615c44c065fbabf3d5796f2fa183c71f0','0.1.0','{"data_root": null, "pred": "/tmp/mkfix/out/pred/beta", "profile": {"aggregates": ["aggregated_dice"], "metrics": ["dice", "hd95", "nsd", "cc_dice", "cc_hd95", "cc_nsd"], "name": "hecktor", "negative_case_metrics": null, "params": {"cc_worst_distance_mm": 50.0, "lesion_match": "any_overlap", "nsd_tolerance_mm": 2.0}, "ranking": {"aggregate": "mean", "primary": "dice", "tiebreak": "hd95", "weights": {}}, "resample_extent": true}}','2026-12-01 13:25:54.379361','2026-12-01 13:25:54.457314','finished');
INSERT INTO runs VALUES(3,'threshold--hecktor-phantom','hecktor-phantom','all',3,'sha256:abababababababababababababababababababababababababababababababab','sha256:8d7295b7be28afe24ebec092880276b615c44c065fbabf3d5796f2fa183c71f0','0.1.0','{"data_root": null, "pred": "/tmp/mkfix/out/pred/threshold", "profile": {"aggregates": ["aggregated_dice"], "metrics": ["dice", "hd95", "nsd", "cc_dice", "cc_hd95", "cc_nsd"], "name": "hecktor", "negative_case_metrics": null, "params": {"cc_worst_distance_mm": 50.0, "lesion_match": "any_overlap", "nsd_tolerance_mm": 2.0}, "ranking": {"aggregate": "mean", "primary": "dice", "tiebreak": "hd95", "weights": {}}, "resample_extent": true}}','2026-12-01 13:25:54.607227','2026-12-01 13:25:54.710118','finished');
INSERT INTO runs VALUES(4,'simulate/hecktor-phantom/all/drop-largest/n00','hecktor-phantom','all',NULL,NULL,NULL,'0.1.0','{"margin_mm": null, "n": 0, "op": "drop", "order": "largest", "seed": 0, "simulation": "dataset"}','2026-12-01 13:25:54.767275','2026-12-01 13:25:54.935622','finished');
INSERT INTO runs VALUES(5,'simulate/hecktor-phantom/all/drop-largest/n01','hecktor-phantom','all',NULL,NULL,NULL,'0.1.0','{"margin_mm": null, "n": 1, "op": "drop", "order": "largest", "seed": 0, "simulation": "dataset"}','2026-12-01 13:25:54.772837','2026-12-01 13:25:54.937090','finished');
CREATE TABLE cases (
	run_id INTEGER NOT NULL, 
	case_id VARCHAR(300) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	seconds FLOAT, 
	completed_at DATETIME, 
	PRIMARY KEY (run_id, case_id), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
INSERT INTO cases VALUES(1,'CHUM-001','scored',0.040069991000564186833,'2026-12-01 13:25:54.046666');
INSERT INTO cases VALUES(1,'CHUS-001','scored',0.018805699000949971377,'2026-12-01 13:25:54.068256');
INSERT INTO cases VALUES(1,'HGJ-001','scored',0.019900778001101571135,'2026-12-01 13:25:54.090759');
INSERT INTO cases VALUES(2,'CHUM-001','scored',0.014471824999418458901,'2026-12-01 13:25:54.401287');
INSERT INTO cases VALUES(2,'CHUS-001','scored',0.019192092000594129785,'2026-12-01 13:25:54.422954');
INSERT INTO cases VALUES(2,'HGJ-001','scored',0.01847499600080482196,'2026-12-01 13:25:54.443529');
INSERT INTO cases VALUES(3,'CHUM-001','scored',0.017163160000563948415,'2026-12-01 13:25:54.632612');
INSERT INTO cases VALUES(3,'CHUS-001','scored',0.028625499999179737642,'2026-12-01 13:25:54.663637');
INSERT INTO cases VALUES(3,'HGJ-001','scored',0.03243420299986610189,'2026-12-01 13:25:54.698274');
INSERT INTO cases VALUES(4,'CHUM-001','scored',0.014364072998432675376,'2026-12-01 13:25:54.792440');
INSERT INTO cases VALUES(5,'CHUM-001','scored',0.014364072998432675376,'2026-12-01 13:25:54.794089');
INSERT INTO cases VALUES(4,'CHUS-001','scored',0.016898017000130494125,'2026-12-01 13:25:54.812807');
INSERT INTO cases VALUES(5,'CHUS-001','scored',0.016898017000130494125,'2026-12-01 13:25:54.814030');
INSERT INTO cases VALUES(4,'HGJ-001','scored',0.11539386300137266516,'2026-12-01 13:25:54.932810');
INSERT INTO cases VALUES(5,'HGJ-001','scored',0.11539386300137266516,'2026-12-01 13:25:54.934113');
CREATE TABLE results (
	run_id INTEGER NOT NULL, 
	case_id VARCHAR(300) NOT NULL, 
	label INTEGER NOT NULL, 
	metric VARCHAR(100) NOT NULL, 
	value FLOAT, 
	PRIMARY KEY (run_id, case_id, label, metric), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
INSERT INTO results VALUES(1,'CHUM-001',1,'dice',1.0);
INSERT INTO results VALUES(1,'CHUM-001',1,'hd95',0.0);
INSERT INTO results VALUES(1,'CHUM-001',1,'nsd',1.0);
INSERT INTO results VALUES(1,'CHUM-001',1,'cc_dice',1.0);
INSERT INTO results VALUES(1,'CHUM-001',1,'cc_hd95',0.0);
INSERT INTO results VALUES(1,'CHUM-001',1,'cc_nsd',1.0);
INSERT INTO results VALUES(1,'CHUM-001',2,'dice',1.0);
INSERT INTO results VALUES(1,'CHUM-001',2,'hd95',0.0);
INSERT INTO results VALUES(1,'CHUM-001',2,'nsd',1.0);
INSERT INTO results VALUES(1,'CHUM-001',2,'cc_dice',1.0);
INSERT INTO results VALUES(1,'CHUM-001',2,'cc_hd95',0.0);
INSERT INTO results VALUES(1,'CHUM-001',2,'cc_nsd',1.0);
INSERT INTO results VALUES(1,'CHUM-001',1,'agg_intersection_voxels',2104.0);
INSERT INTO results VALUES(1,'CHUM-001',1,'agg_volume_voxels',4208.0);
INSERT INTO results VALUES(1,'CHUM-001',2,'agg_intersection_voxels',0.0);
INSERT INTO results VALUES(1,'CHUM-001',2,'agg_volume_voxels',0.0);
INSERT INTO results VALUES(1,'CHUS-001',1,'dice',1.0);
INSERT INTO results VALUES(1,'CHUS-001',1,'hd95',0.0);
INSERT INTO results VALUES(1,'CHUS-001',1,'nsd',1.0);
INSERT INTO results VALUES(1,'CHUS-001',1,'cc_dice',1.0);
INSERT INTO results VALUES(1,'CHUS-001',1,'cc_hd95',0.0);
INSERT INTO results VALUES(1,'CHUS-001',1,'cc_nsd',1.0);
INSERT INTO results VALUES(1,'CHUS-001',2,'dice',1.0);
INSERT INTO results VALUES(1,'CHUS-001',2,'hd95',0.0);
INSERT INTO results VALUES(1,'CHUS-001',2,'nsd',1.0);
INSERT INTO results VALUES(1,'CHUS-001',2,'cc_dice',1.0);
INSERT INTO results VALUES(1,'CHUS-001',2,'cc_hd95',0.0);
INSERT INTO results VALUES(1,'CHUS-001',2,'cc_nsd',1.0);
INSERT INTO results VALUES(1,'CHUS-001',1,'agg_intersection_voxels',799.0);
INSERT INTO results VALUES(1,'CHUS-001',1,'agg_volume_voxels',1598.0);
INSERT INTO results VALUES(1,'CHUS-001',2,'agg_intersection_voxels',2505.0);
INSERT INTO results VALUES(1,'CHUS-001',2,'agg_volume_voxels',5010.0);
INSERT INTO results VALUES(1,'HGJ-001',1,'dice',1.0);
INSERT INTO results VALUES(1,'HGJ-001',1,'hd95',0.0);
INSERT INTO results VALUES(1,'HGJ-001',1,'nsd',1.0);
INSERT INTO results VALUES(1,'HGJ-001',1,'cc_dice',1.0);
INSERT INTO results VALUES(1,'HGJ-001',1,'cc_hd95',0.0);
INSERT INTO results VALUES(1,'HGJ-001',1,'cc_nsd',1.0);
INSERT INTO results VALUES(1,'HGJ-001',2,'dice',0.77750247770069380592);
INSERT INTO results VALUES(1,'HGJ-001',2,'hd95',34.394707464738594638);
INSERT INTO results VALUES(1,'HGJ-001',2,'nsd',0.76480990274093718639);
INSERT INTO results VALUES(1,'HGJ-001',2,'cc_dice',0.66666666666666662965);
INSERT INTO results VALUES(1,'HGJ-001',2,'cc_hd95',16.666666666666667851);
INSERT INTO results VALUES(1,'HGJ-001',2,'cc_nsd',0.66666666666666662965);
INSERT INTO results VALUES(1,'HGJ-001',1,'agg_intersection_voxels',2028.0);
INSERT INTO results VALUES(1,'HGJ-001',1,'agg_volume_voxels',4056.0);
INSERT INTO results VALUES(1,'HGJ-001',2,'agg_intersection_voxels',1569.0);
INSERT INTO results VALUES(1,'HGJ-001',2,'agg_volume_voxels',4036.0);
INSERT INTO results VALUES(2,'CHUM-001',1,'dice',0.99221881631690633795);
INSERT INTO results VALUES(2,'CHUM-001',1,'hd95',0.0);
INSERT INTO results VALUES(2,'CHUM-001',1,'nsd',0.98982785602503908783);
INSERT INTO results VALUES(2,'CHUM-001',1,'cc_dice',0.99221881631690633795);
INSERT INTO results VALUES(2,'CHUM-001',1,'cc_hd95',0.0);
INSERT INTO results VALUES(2,'CHUM-001',1,'cc_nsd',0.98982785602503908783);
INSERT INTO results VALUES(2,'CHUM-001',2,'dice',1.0);
INSERT INTO results VALUES(2,'CHUM-001',2,'hd95',0.0);
INSERT INTO results VALUES(2,'CHUM-001',2,'nsd',1.0);
INSERT INTO results VALUES(2,'CHUM-001',2,'cc_dice',1.0);
INSERT INTO results VALUES(2,'CHUM-001',2,'cc_hd95',0.0);
INSERT INTO results VALUES(2,'CHUM-001',2,'cc_nsd',1.0);
INSERT INTO results VALUES(2,'CHUM-001',1,'agg_intersection_voxels',2104.0);
INSERT INTO results VALUES(2,'CHUM-001',1,'agg_volume_voxels',4241.0);
INSERT INTO results VALUES(2,'CHUM-001',2,'agg_intersection_voxels',0.0);
INSERT INTO results VALUES(2,'CHUM-001',2,'agg_volume_voxels',0.0);
INSERT INTO results VALUES(2,'CHUS-001',1,'dice',0.68908941755537322926);
INSERT INTO results VALUES(2,'CHUS-001',1,'hd95',3.0);
INSERT INTO results VALUES(2,'CHUS-001',1,'nsd',0.70762052877138414963);
INSERT INTO results VALUES(2,'CHUS-001',1,'cc_dice',0.68908941755537322926);
INSERT INTO results VALUES(2,'CHUS-001',1,'cc_hd95',3.0);
INSERT INTO results VALUES(2,'CHUS-001',1,'cc_nsd',0.70762052877138414963);
INSERT INTO results VALUES(2,'CHUS-001',2,'dice',1.0);
INSERT INTO results VALUES(2,'CHUS-001',2,'hd95',0.0);
INSERT INTO results VALUES(2,'CHUS-001',2,'nsd',1.0);
INSERT INTO results VALUES(2,'CHUS-001',2,'cc_dice',1.0);
INSERT INTO results VALUES(2,'CHUS-001',2,'cc_hd95',0.0);
INSERT INTO results VALUES(2,'CHUS-001',2,'cc_nsd',1.0);
INSERT INTO results VALUES(2,'CHUS-001',1,'agg_intersection_voxels',420.0);
INSERT INTO results VALUES(2,'CHUS-001',1,'agg_volume_voxels',1219.0);
INSERT INTO results VALUES(2,'CHUS-001',2,'agg_intersection_voxels',2505.0);
INSERT INTO results VALUES(2,'CHUS-001',2,'agg_volume_voxels',5010.0);
INSERT INTO results VALUES(2,'HGJ-001',1,'dice',1.0);
INSERT INTO results VALUES(2,'HGJ-001',1,'hd95',0.0);
INSERT INTO results VALUES(2,'HGJ-001',1,'nsd',1.0);
INSERT INTO results VALUES(2,'HGJ-001',1,'cc_dice',1.0);
INSERT INTO results VALUES(2,'HGJ-001',1,'cc_hd95',0.0);
INSERT INTO results VALUES(2,'HGJ-001',1,'cc_nsd',1.0);
INSERT INTO results VALUES(2,'HGJ-001',2,'dice',0.77750247770069380592);
INSERT INTO results VALUES(2,'HGJ-001',2,'hd95',34.394707464738594638);
INSERT INTO results VALUES(2,'HGJ-001',2,'nsd',0.76480990274093718639);
INSERT INTO results VALUES(2,'HGJ-001',2,'cc_dice',0.66666666666666662965);
INSERT INTO results VALUES(2,'HGJ-001',2,'cc_hd95',16.666666666666667851);
INSERT INTO results VALUES(2,'HGJ-001',2,'cc_nsd',0.66666666666666662965);
INSERT INTO results VALUES(2,'HGJ-001',1,'agg_intersection_voxels',2028.0);
INSERT INTO results VALUES(2,'HGJ-001',1,'agg_volume_voxels',4056.0);
INSERT INTO results VALUES(2,'HGJ-001',2,'agg_intersection_voxels',1569.0);
INSERT INTO results VALUES(2,'HGJ-001',2,'agg_volume_voxels',4036.0);
INSERT INTO results VALUES(3,'CHUM-001',1,'dice',0.99221881631690633795);
INSERT INTO results VALUES(3,'CHUM-001',1,'hd95',0.0);
INSERT INTO results VALUES(3,'CHUM-001',1,'nsd',0.98982785602503908783);
INSERT INTO results VALUES(3,'CHUM-001',1,'cc_dice',0.99221881631690633795);
INSERT INTO results VALUES(3,'CHUM-001',1,'cc_hd95',0.0);
INSERT INTO results VALUES(3,'CHUM-001',1,'cc_nsd',0.98982785602503908783);
INSERT INTO results VALUES(3,'CHUM-001',2,'dice',1.0);
INSERT INTO results VALUES(3,'CHUM-001',2,'hd95',0.0);
INSERT INTO results VALUES(3,'CHUM-001',2,'nsd',1.0);
INSERT INTO results VALUES(3,'CHUM-001',2,'cc_dice',1.0);
INSERT INTO results VALUES(3,'CHUM-001',2,'cc_hd95',0.0);
INSERT INTO results VALUES(3,'CHUM-001',2,'cc_nsd',1.0);
INSERT INTO results VALUES(3,'CHUM-001',1,'agg_intersection_voxels',2104.0);
INSERT INTO results VALUES(3,'CHUM-001',1,'agg_volume_voxels',4241.0);
INSERT INTO results VALUES(3,'CHUM-001',2,'agg_intersection_voxels',0.0);
INSERT INTO results VALUES(3,'CHUM-001',2,'agg_volume_voxels',0.0);
INSERT INTO results VALUES(3,'CHUS-001',1,'dice',0.67092651757188503935);
INSERT INTO results VALUES(3,'CHUS-001',1,'hd95',26.006467633988215482);
INSERT INTO results VALUES(3,'CHUS-001',1,'nsd',0.68011958146487294651);
INSERT INTO results VALUES(3,'CHUS-001',1,'cc_dice',0.67092651757188503935);
INSERT INTO results VALUES(3,'CHUS-001',1,'cc_hd95',26.006467633988215482);
INSERT INTO results VALUES(3,'CHUS-001',1,'cc_nsd',0.68011958146487294651);
INSERT INTO results VALUES(3,'CHUS-001',2,'dice',0.80663339236837872103);
INSERT INTO results VALUES(3,'CHUS-001',2,'hd95',3.0);
INSERT INTO results VALUES(3,'CHUS-001',2,'nsd',0.67849022282855842025);
INSERT INTO results VALUES(3,'CHUS-001',2,'cc_dice',0.80663339236837872103);
INSERT INTO results VALUES(3,'CHUS-001',2,'cc_hd95',3.0);
INSERT INTO results VALUES(3,'CHUS-001',2,'cc_nsd',0.67849022282855842025);
INSERT INTO results VALUES(3,'CHUS-001',1,'agg_intersection_voxels',420.0);
INSERT INTO results VALUES(3,'CHUS-001',1,'agg_volume_voxels',1252.0);
INSERT INTO results VALUES(3,'CHUS-001',2,'agg_intersection_voxels',2505.0);
INSERT INTO results VALUES(3,'CHUS-001',2,'agg_volume_voxels',6211.0);
INSERT INTO results VALUES(3,'HGJ-001',1,'dice',0.73665092626225936456);
INSERT INTO results VALUES(3,'HGJ-001',1,'hd95',5.815303423132713867);
INSERT INTO results VALUES(3,'HGJ-001',1,'nsd',0.47952544967470339676);
INSERT INTO results VALUES(3,'HGJ-001',1,'cc_dice',0.73665092626225936456);
INSERT INTO results VALUES(3,'HGJ-001',1,'cc_hd95',5.815303423132713867);
INSERT INTO results VALUES(3,'HGJ-001',1,'cc_nsd',0.47952544967470339676);
INSERT INTO results VALUES(3,'HGJ-001',2,'dice',0.96670157068062823046);
INSERT INTO results VALUES(3,'HGJ-001',2,'hd95',24.856114583077179246);
INSERT INTO results VALUES(3,'HGJ-001',2,'nsd',0.95080736012016520142);
INSERT INTO results VALUES(3,'HGJ-001',2,'cc_dice',0.66666666666666662965);
INSERT INTO results VALUES(3,'HGJ-001',2,'cc_hd95',16.666666666666667851);
INSERT INTO results VALUES(3,'HGJ-001',2,'cc_nsd',0.66666666666666662965);
INSERT INTO results VALUES(3,'HGJ-001',1,'agg_intersection_voxels',2028.0);
INSERT INTO results VALUES(3,'HGJ-001',1,'agg_volume_voxels',5506.0);
INSERT INTO results VALUES(3,'HGJ-001',2,'agg_intersection_voxels',2308.0);
INSERT INTO results VALUES(3,'HGJ-001',2,'agg_volume_voxels',4775.0);
INSERT INTO results VALUES(4,'CHUM-001',1,'dice',1.0);
INSERT INTO results VALUES(4,'CHUM-001',1,'hd95',0.0);
INSERT INTO results VALUES(4,'CHUM-001',1,'nsd',1.0);
INSERT INTO results VALUES(4,'CHUM-001',1,'cc_dice',1.0);
INSERT INTO results VALUES(4,'CHUM-001',1,'cc_hd95',0.0);
INSERT INTO results VALUES(4,'CHUM-001',1,'cc_nsd',1.0);
INSERT INTO results VALUES(4,'CHUM-001',1,'ref_components',1.0);
INSERT INTO results VALUES(4,'CHUS-001',1,'dice',1.0);
INSERT INTO results VALUES(4,'CHUS-001',1,'hd95',0.0);
INSERT INTO results VALUES(4,'CHUS-001',1,'nsd',1.0);
INSERT INTO results VALUES(4,'CHUS-001',1,'cc_dice',1.0);
INSERT INTO results VALUES(4,'CHUS-001',1,'cc_hd95',0.0);
INSERT INTO results VALUES(4,'CHUS-001',1,'cc_nsd',1.0);
INSERT INTO results VALUES(4,'CHUS-001',1,'ref_components',1.0);
INSERT INTO results VALUES(4,'CHUS-001',2,'dice',1.0);
INSERT INTO results VALUES(4,'CHUS-001',2,'hd95',0.0);
INSERT INTO results VALUES(4,'CHUS-001',2,'nsd',1.0);
INSERT INTO results VALUES(4,'CHUS-001',2,'cc_dice',1.0);
INSERT INTO results VALUES(4,'CHUS-001',2,'cc_hd95',0.0);
INSERT INTO results VALUES(4,'CHUS-001',2,'cc_nsd',1.0);
INSERT INTO results VALUES(4,'CHUS-001',2,'ref_components',1.0);
INSERT INTO results VALUES(4,'HGJ-001',1,'dice',1.0);
INSERT INTO results VALUES(4,'HGJ-001',1,'hd95',0.0);
INSERT INTO results VALUES(4,'HGJ-001',1,'nsd',1.0);
INSERT INTO results VALUES(4,'HGJ-001',1,'cc_dice',1.0);
INSERT INTO results VALUES(4,'HGJ-001',1,'cc_hd95',0.0);
INSERT INTO results VALUES(4,'HGJ-001',1,'cc_nsd',1.0);
INSERT INTO results VALUES(4,'HGJ-001',1,'ref_components',1.0);
INSERT INTO results VALUES(4,'HGJ-001',2,'dice',1.0);
INSERT INTO results VALUES(4,'HGJ-001',2,'hd95',0.0);
INSERT INTO results VALUES(4,'HGJ-001',2,'nsd',1.0);
INSERT INTO results VALUES(4,'HGJ-001',2,'cc_dice',1.0);
INSERT INTO results VALUES(4,'HGJ-001',2,'cc_hd95',0.0);
INSERT INTO results VALUES(4,'HGJ-001',2,'cc_nsd',1.0);
INSERT INTO results VALUES(4,'HGJ-001',2,'ref_components',3.0);
INSERT INTO results VALUES(5,'HGJ-001',2,'dice',0.59988649262202042855);
INSERT INTO results VALUES(5,'HGJ-001',2,'hd95',53.962652425086858444);
INSERT INTO results VALUES(5,'HGJ-001',2,'nsd',0.64368932038834947295);
INSERT INTO results VALUES(5,'HGJ-001',2,'cc_dice',0.66666666666666662965);
INSERT INTO results VALUES(5,'HGJ-001',2,'cc_hd95',16.666666666666667851);
INSERT INTO results VALUES(5,'HGJ-001',2,'cc_nsd',0.66666666666666662965);
INSERT INTO results VALUES(5,'HGJ-001',2,'ref_components',3.0);
CREATE TABLE components (
	run_id INTEGER NOT NULL, 
	case_id VARCHAR(300) NOT NULL, 
	label INTEGER NOT NULL, 
	metric VARCHAR(100) NOT NULL, 
	component INTEGER NOT NULL, 
	value FLOAT, 
	PRIMARY KEY (run_id, case_id, label, metric, component), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
INSERT INTO components VALUES(1,'CHUM-001',1,'cc_dice',0,1.0);
INSERT INTO components VALUES(1,'CHUM-001',1,'cc_hd95',0,0.0);
INSERT INTO components VALUES(1,'CHUM-001',1,'cc_nsd',0,1.0);
INSERT INTO components VALUES(1,'CHUM-001',2,'cc_dice',0,1.0);
INSERT INTO components VALUES(1,'CHUM-001',2,'cc_hd95',0,0.0);
INSERT INTO components VALUES(1,'CHUM-001',2,'cc_nsd',0,1.0);
INSERT INTO components VALUES(1,'CHUS-001',1,'cc_dice',0,1.0);
INSERT INTO components VALUES(1,'CHUS-001',1,'cc_hd95',0,0.0);
INSERT INTO components VALUES(1,'CHUS-001',1,'cc_nsd',0,1.0);
INSERT INTO components VALUES(1,'CHUS-001',2,'cc_dice',0,1.0);
INSERT INTO components VALUES(1,'CHUS-001',2,'cc_hd95',0,0.0);
INSERT INTO components VALUES(1,'CHUS-001',2,'cc_nsd',0,1.0);
INSERT INTO components VALUES(1,'HGJ-001',1,'cc_dice',0,1.0);
INSERT INTO components VALUES(1,'HGJ-001',1,'cc_hd95',0,0.0);
INSERT INTO components VALUES(1,'HGJ-001',1,'cc_nsd',0,1.0);
INSERT INTO components VALUES(1,'HGJ-001',2,'cc_dice',0,1.0);
INSERT INTO components VALUES(1,'HGJ-001',2,'cc_dice',1,1.0);
INSERT INTO components VALUES(1,'HGJ-001',2,'cc_dice',2,0.0);
INSERT INTO components VALUES(1,'HGJ-001',2,'cc_hd95',0,0.0);
INSERT INTO components VALUES(1,'HGJ-001',2,'cc_hd95',1,0.0);
INSERT INTO components VALUES(1,'HGJ-001',2,'cc_hd95',2,50.0);
INSERT INTO components VALUES(1,'HGJ-001',2,'cc_nsd',0,1.0);
INSERT INTO components VALUES(1,'HGJ-001',2,'cc_nsd',1,1.0);
INSERT INTO components VALUES(1,'HGJ-001',2,'cc_nsd',2,0.0);
INSERT INTO components VALUES(2,'CHUM-001',1,'cc_dice',0,0.99221881631690633795);
INSERT INTO components VALUES(2,'CHUM-001',1,'cc_hd95',0,0.0);
INSERT INTO components VALUES(2,'CHUM-001',1,'cc_nsd',0,0.98982785602503908783);
INSERT INTO components VALUES(2,'CHUM-001',2,'cc_dice',0,1.0);
INSERT INTO components VALUES(2,'CHUM-001',2,'cc_hd95',0,0.0);
INSERT INTO components VALUES(2,'CHUM-001',2,'cc_nsd',0,1.0);
INSERT INTO components VALUES(2,'CHUS-001',1,'cc_dice',0,0.68908941755537322926);
INSERT INTO components VALUES(2,'CHUS-001',1,'cc_hd95',0,3.0);
INSERT INTO components VALUES(2,'CHUS-001',1,'cc_nsd',0,0.70762052877138414963);
INSERT INTO components VALUES(2,'CHUS-001',2,'cc_dice',0,1.0);
INSERT INTO components VALUES(2,'CHUS-001',2,'cc_hd95',0,0.0);
INSERT INTO components VALUES(2,'CHUS-001',2,'cc_nsd',0,1.0);
INSERT INTO components VALUES(2,'HGJ-001',1,'cc_dice',0,1.0);
INSERT INTO components VALUES(2,'HGJ-001',1,'cc_hd95',0,0.0);
INSERT INTO components VALUES(2,'HGJ-001',1,'cc_nsd',0,1.0);
INSERT INTO components VALUES(2,'HGJ-001',2,'cc_dice',0,1.0);
INSERT INTO components VALUES(2,'HGJ-001',2,'cc_dice',1,1.0);
INSERT INTO components VALUES(2,'HGJ-001',2,'cc_dice',2,0.0);
INSERT INTO components VALUES(2,'HGJ-001',2,'cc_hd95',0,0.0);
INSERT INTO components VALUES(2,'HGJ-001',2,'cc_hd95',1,0.0);
INSERT INTO components VALUES(2,'HGJ-001',2,'cc_hd95',2,50.0);
INSERT INTO components VALUES(2,'HGJ-001',2,'cc_nsd',0,1.0);
INSERT INTO components VALUES(2,'HGJ-001',2,'cc_nsd',1,1.0);
INSERT INTO components VALUES(2,'HGJ-001',2,'cc_nsd',2,0.0);
INSERT INTO components VALUES(3,'CHUM-001',1,'cc_dice',0,0.99221881631690633795);
INSERT INTO components VALUES(3,'CHUM-001',1,'cc_hd95',0,0.0);
INSERT INTO components VALUES(3,'CHUM-001',1,'cc_nsd',0,0.98982785602503908783);
INSERT INTO components VALUES(3,'CHUM-001',2,'cc_dice',0,1.0);
INSERT INTO components VALUES(3,'CHUM-001',2,'cc_hd95',0,0.0);
INSERT INTO components VALUES(3,'CHUM-001',2,'cc_nsd',0,1.0);
INSERT INTO components VALUES(3,'CHUS-001',1,'cc_dice',0,0.67092651757188503935);
INSERT INTO components VALUES(3,'CHUS-001',1,'cc_hd95',0,26.006467633988215482);
INSERT INTO components VALUES(3,'CHUS-001',1,'cc_nsd',0,0.68011958146487294651);
INSERT INTO components VALUES(3,'CHUS-001',2,'cc_dice',0,0.80663339236837872103);
INSERT INTO components VALUES(3,'CHUS-001',2,'cc_hd95',0,3.0);
INSERT INTO components VALUES(3,'CHUS-001',2,'cc_nsd',0,0.67849022282855842025);
INSERT INTO components VALUES(3,'HGJ-001',1,'cc_dice',0,0.73665092626225936456);
INSERT INTO components VALUES(3,'HGJ-001',1,'cc_hd95',0,5.815303423132713867);
INSERT INTO components VALUES(3,'HGJ-001',1,'cc_nsd',0,0.47952544967470339676);
INSERT INTO components VALUES(3,'HGJ-001',2,'cc_dice',0,1.0);
INSERT INTO components VALUES(3,'HGJ-001',2,'cc_dice',1,0.0);
INSERT INTO components VALUES(3,'HGJ-001',2,'cc_dice',2,1.0);
INSERT INTO components VALUES(3,'HGJ-001',2,'cc_hd95',0,0.0);
INSERT INTO components VALUES(3,'HGJ-001',2,'cc_hd95',1,50.0);
INSERT INTO components VALUES(3,'HGJ-001',2,'cc_hd95',2,0.0);
INSERT INTO components VALUES(3,'HGJ-001',2,'cc_nsd',0,1.0);
INSERT INTO components VALUES(3,'HGJ-001',2,'cc_nsd',1,0.0);
INSERT INTO components VALUES(3,'HGJ-001',2,'cc_nsd',2,1.0);
CREATE TABLE case_errors (
	run_id INTEGER NOT NULL, 
	case_id VARCHAR(300) NOT NULL, 
	error_class VARCHAR(50) NOT NULL, 
	message TEXT NOT NULL, 
	PRIMARY KEY (run_id, case_id), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE TABLE aggregates (
	run_id INTEGER NOT NULL, 
	label INTEGER NOT NULL, 
	metric VARCHAR(100) NOT NULL, 
	value FLOAT, 
	PRIMARY KEY (run_id, label, metric), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
INSERT INTO aggregates VALUES(1,1,'aggregated_dice',1.0);
INSERT INTO aggregates VALUES(1,2,'aggregated_dice',0.90072960424497017228);
INSERT INTO aggregates VALUES(1,0,'aggregated_dice',0.95036480212248508614);
INSERT INTO aggregates VALUES(2,1,'aggregated_dice',0.95670449768810428281);
INSERT INTO aggregates VALUES(2,2,'aggregated_dice',0.90072960424497017228);
INSERT INTO aggregates VALUES(2,0,'aggregated_dice',0.92871705096653722755);
INSERT INTO aggregates VALUES(3,1,'aggregated_dice',0.82771161014637695263);
INSERT INTO aggregates VALUES(3,2,'aggregated_dice',0.87620608046604764318);
INSERT INTO aggregates VALUES(3,0,'aggregated_dice',0.85195884530621235342);
CREATE TABLE run_logs (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	case_id VARCHAR(300), 
	stream VARCHAR(20) NOT NULL, 
	message TEXT NOT NULL, 
	created_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
COMMIT;
