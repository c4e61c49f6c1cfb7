PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE ferry_migrations ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "name" VARCHAR, "group_id" INTEGER, "migrated_at" TIMESTAMP NOT NULL DEFAULT current_timestamp);
INSERT INTO ferry_migrations VALUES(1,'20261126000001',1,'2026-12-02 01:34:06');
INSERT INTO ferry_migrations VALUES(2,'20261126000002',1,'2026-12-02 01:34:06');
INSERT INTO ferry_migrations VALUES(3,'20261201000003',1,'2026-12-02 01:34:06');
CREATE TABLE ferry_migration_locks ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "table_name" VARCHAR, UNIQUE ("table_name"));
CREATE TABLE IF NOT EXISTS "ferry_records" ("model" varchar(128) NOT NULL, "uid" varchar(64) NOT NULL, "owner" varchar(255) NOT NULL, "modify_at" TIMESTAMP NOT NULL, "is_deleted" BOOLEAN NOT NULL, "version" INTEGER NOT NULL, "data" text NOT NULL, "created_at" TIMESTAMP NOT NULL, "updated_at" TIMESTAMP NOT NULL, PRIMARY KEY ("model", "uid"));
INSERT INTO ferry_records VALUES('data.Setting','theme','708ecf76-50e7-4f9e-9ff9-d34802805e37','2026-11-30 10:00:02+00:00',0,4,'{"key":"theme","value":"dark"}','2026-12-02 01:34:06.272369+00:00','2026-12-02 01:34:06.272369+00:00');
INSERT INTO ferry_records VALUES('data.Task','t1','708ecf76-50e7-4f9e-9ff9-d34802805e37','2026-11-30 10:00:03+00:00',0,5,'{"done":false,"title":"ann''s task"}','2026-12-02 01:34:06.272369+00:00','2026-12-02 01:34:06.272369+00:00');
CREATE TABLE IF NOT EXISTS "ferry_scopes" ("scope" varchar(255) NOT NULL, "version" INTEGER NOT NULL, "purged_version" INTEGER NOT NULL, records bigint NOT NULL DEFAULT 0, bytes bigint NOT NULL DEFAULT 0, PRIMARY KEY ("scope"));
INSERT INTO ferry_scopes VALUES('708ecf76-50e7-4f9e-9ff9-d34802805e37',6,0,5,825);
INSERT INTO ferry_scopes VALUES('0dde1bd1-3cbf-4703-a736-33be40f04a16',2,0,2,359);
CREATE TABLE IF NOT EXISTS "notes" ("uid" varchar(64) NOT NULL, "owner" varchar(255) NOT NULL, "modify_at" TIMESTAMP NOT NULL, "is_deleted" BOOLEAN NOT NULL, "version" INTEGER NOT NULL, "created_at" TIMESTAMP NOT NULL, "updated_at" TIMESTAMP NOT NULL, "title" VARCHAR NOT NULL, "body" VARCHAR NOT NULL, "tags" VARCHAR, "pinned" BOOLEAN NOT NULL, PRIMARY KEY ("uid"));
INSERT INTO notes VALUES('n1','708ecf76-50e7-4f9e-9ff9-d34802805e37','2026-11-30 10:00:00+00:00',0,2,'2026-12-02 01:34:06.272364+00:00','2026-12-02 01:34:06.272364+00:00','ann''s note','','null',0);
INSERT INTO notes VALUES('n2','708ecf76-50e7-4f9e-9ff9-d34802805e37','2026-11-30 11:00:00+00:00',1,6,'2026-12-02 01:34:06.272367+00:00','2026-12-02 01:34:06.274081+00:00','ann''s second','','null',0);
INSERT INTO notes VALUES('b1','0dde1bd1-3cbf-4703-a736-33be40f04a16','2026-11-30 10:00:00+00:00',0,2,'2026-12-02 01:34:06.275301+00:00','2026-12-02 01:34:06.275301+00:00','bob''s note','','null',0);
CREATE TABLE IF NOT EXISTS "users" ("uid" varchar(64) NOT NULL, "owner" varchar(255) NOT NULL, "modify_at" TIMESTAMP NOT NULL, "is_deleted" BOOLEAN NOT NULL, "version" INTEGER NOT NULL, "created_at" TIMESTAMP NOT NULL, "updated_at" TIMESTAMP NOT NULL, "name" VARCHAR NOT NULL, "email" VARCHAR NOT NULL, "password_hash" VARCHAR NOT NULL, PRIMARY KEY ("uid"), UNIQUE ("email"));
INSERT INTO users VALUES('708ecf76-50e7-4f9e-9ff9-d34802805e37','708ecf76-50e7-4f9e-9ff9-d34802805e37','2026-12-02 01:34:06.268222+00:00',0,1,'2026-12-02 01:34:06.268225+00:00','2026-12-02 01:34:06.268225+00:00','ann-prev','ann-prev@example.com','$2a$04$v.gwzgJ7BIHFUhqjygfKfuDzhcjhMFppKLZUhzGoSfLbpte3X8.Ly');
INSERT INTO users VALUES('0dde1bd1-3cbf-4703-a736-33be40f04a16','0dde1bd1-3cbf-4703-a736-33be40f04a16','2026-12-02 01:34:06.270493+00:00',0,1,'2026-12-02 01:34:06.270496+00:00','2026-12-02 01:34:06.270496+00:00','bob-prev','bob-prev@example.com','$2a$04$BDmssimgTWT1O8A2rHUgYu4L.sDtde5lx4Q8lkd3j55Az7JwhMqGW');
CREATE TABLE IF NOT EXISTS "token_generations" ("user_id" VARCHAR NOT NULL, "generation" INTEGER NOT NULL, PRIMARY KEY ("user_id"));
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('ferry_migration_locks',1);
INSERT INTO sqlite_sequence VALUES('ferry_migrations',3);
CREATE INDEX "ferry_records_owner_version" ON "ferry_records" ("owner", "version");
CREATE TRIGGER "ferry_usage_ferry_records_ins" AFTER INSERT ON "ferry_records" BEGIN
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT NEW.owner, 0, 0, 1, 128 + coalesce(length(CAST(NEW."data" AS BLOB)), 0) WHERE true
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + 1, bytes = ferry_scopes.bytes + excluded.bytes;
		END;
CREATE TRIGGER "ferry_usage_ferry_records_upd" AFTER UPDATE ON "ferry_records" BEGIN
		UPDATE ferry_scopes SET bytes = bytes + (128 + coalesce(length(CAST(NEW."data" AS BLOB)), 0)) - (128 + coalesce(length(CAST(OLD."data" AS BLOB)), 0)) WHERE scope = NEW.owner AND NEW.owner = OLD.owner;
		UPDATE ferry_scopes SET records = records - 1, bytes = bytes - (128 + coalesce(length(CAST(OLD."data" AS BLOB)), 0)) WHERE scope = OLD.owner AND NEW.owner <> OLD.owner;
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT NEW.owner, 0, 0, 1, 128 + coalesce(length(CAST(NEW."data" AS BLOB)), 0) WHERE NEW.owner <> OLD.owner
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + 1, bytes = ferry_scopes.bytes + excluded.bytes;
		END;
CREATE TRIGGER "ferry_usage_ferry_records_del" AFTER DELETE ON "ferry_records" BEGIN
		UPDATE ferry_scopes SET records = records - 1, bytes = bytes - (128 + coalesce(length(CAST(OLD."data" AS BLOB)), 0)) WHERE scope = OLD.owner;
		END;
CREATE INDEX "notes_owner_version" ON "notes" ("owner", "version");
CREATE TRIGGER "ferry_usage_notes_ins" AFTER INSERT ON "notes" BEGIN
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT NEW.owner, 0, 0, 1, 128 + coalesce(length(CAST(NEW."title" AS BLOB)), 0) + coalesce(length(CAST(NEW."body" AS BLOB)), 0) + coalesce(length(CAST(NEW."tags" AS BLOB)), 0) + coalesce(length(CAST(NEW."pinned" AS BLOB)), 0) WHERE true
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + 1, bytes = ferry_scopes.bytes + excluded.bytes;
		END;
CREATE TRIGGER "ferry_usage_notes_upd" AFTER UPDATE ON "notes" BEGIN
		UPDATE ferry_scopes SET bytes = bytes + (128 + coalesce(length(CAST(NEW."title" AS BLOB)), 0) + coalesce(length(CAST(NEW."body" AS BLOB)), 0) + coalesce(length(CAST(NEW."tags" AS BLOB)), 0) + coalesce(length(CAST(NEW."pinned" AS BLOB)), 0)) - (128 + coalesce(length(CAST(OLD."title" AS BLOB)), 0) + coalesce(length(CAST(OLD."body" AS BLOB)), 0) + coalesce(length(CAST(OLD."tags" AS BLOB)), 0) + coalesce(length(CAST(OLD."pinned" AS BLOB)), 0)) WHERE scope = NEW.owner AND NEW.owner = OLD.owner;
		UPDATE ferry_scopes SET records = records - 1, bytes = bytes - (128 + coalesce(length(CAST(OLD."title" AS BLOB)), 0) + coalesce(length(CAST(OLD."body" AS BLOB)), 0) + coalesce(length(CAST(OLD."tags" AS BLOB)), 0) + coalesce(length(CAST(OLD."pinned" AS BLOB)), 0)) WHERE scope = OLD.owner AND NEW.owner <> OLD.owner;
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT NEW.owner, 0, 0, 1, 128 + coalesce(length(CAST(NEW."title" AS BLOB)), 0) + coalesce(length(CAST(NEW."body" AS BLOB)), 0) + coalesce(length(CAST(NEW."tags" AS BLOB)), 0) + coalesce(length(CAST(NEW."pinned" AS BLOB)), 0) WHERE NEW.owner <> OLD.owner
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + 1, bytes = ferry_scopes.bytes + excluded.bytes;
		END;
CREATE TRIGGER "ferry_usage_notes_del" AFTER DELETE ON "notes" BEGIN
		UPDATE ferry_scopes SET records = records - 1, bytes = bytes - (128 + coalesce(length(CAST(OLD."title" AS BLOB)), 0) + coalesce(length(CAST(OLD."body" AS BLOB)), 0) + coalesce(length(CAST(OLD."tags" AS BLOB)), 0) + coalesce(length(CAST(OLD."pinned" AS BLOB)), 0)) WHERE scope = OLD.owner;
		END;
CREATE INDEX "users_owner_version" ON "users" ("owner", "version");
CREATE TRIGGER "ferry_usage_users_ins" AFTER INSERT ON "users" BEGIN
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT NEW.owner, 0, 0, 1, 128 + coalesce(length(CAST(NEW."name" AS BLOB)), 0) + coalesce(length(CAST(NEW."email" AS BLOB)), 0) + coalesce(length(CAST(NEW."password_hash" AS BLOB)), 0) WHERE true
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + 1, bytes = ferry_scopes.bytes + excluded.bytes;
		END;
CREATE TRIGGER "ferry_usage_users_upd" AFTER UPDATE ON "users" BEGIN
		UPDATE ferry_scopes SET bytes = bytes + (128 + coalesce(length(CAST(NEW."name" AS BLOB)), 0) + coalesce(length(CAST(NEW."email" AS BLOB)), 0) + coalesce(length(CAST(NEW."password_hash" AS BLOB)), 0)) - (128 + coalesce(length(CAST(OLD."name" AS BLOB)), 0) + coalesce(length(CAST(OLD."email" AS BLOB)), 0) + coalesce(length(CAST(OLD."password_hash" AS BLOB)), 0)) WHERE scope = NEW.owner AND NEW.owner = OLD.owner;
		UPDATE ferry_scopes SET records = records - 1, bytes = bytes - (128 + coalesce(length(CAST(OLD."name" AS BLOB)), 0) + coalesce(length(CAST(OLD."email" AS BLOB)), 0) + coalesce(length(CAST(OLD."password_hash" AS BLOB)), 0)) WHERE scope = OLD.owner AND NEW.owner <> OLD.owner;
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT NEW.owner, 0, 0, 1, 128 + coalesce(length(CAST(NEW."name" AS BLOB)), 0) + coalesce(length(CAST(NEW."email" AS BLOB)), 0) + coalesce(length(CAST(NEW."password_hash" AS BLOB)), 0) WHERE NEW.owner <> OLD.owner
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + 1, bytes = ferry_scopes.bytes + excluded.bytes;
		END;
CREATE TRIGGER "ferry_usage_users_del" AFTER DELETE ON "users" BEGIN
		UPDATE ferry_scopes SET records = records - 1, bytes = bytes - (128 + coalesce(length(CAST(OLD."name" AS BLOB)), 0) + coalesce(length(CAST(OLD."email" AS BLOB)), 0) + coalesce(length(CAST(OLD."password_hash" AS BLOB)), 0)) WHERE scope = OLD.owner;
		END;
COMMIT;
