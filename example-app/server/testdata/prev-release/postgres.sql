--
-- PostgreSQL database dump
--

\restrict FKPjpJEJ1l3Tepbd6hibyNyVyin8XnY7hnxM5jEKW3D44qbYhyTI4xhZVmHw292

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: ferry_prev; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA ferry_prev;


--
-- Name: ferry_usage_ferry_records(); Type: FUNCTION; Schema: ferry_prev; Owner: -
--

CREATE FUNCTION ferry_prev.ferry_usage_ferry_records() RETURNS trigger
    LANGUAGE plpgsql
    AS $$BEGIN
	IF TG_OP <> 'DELETE' THEN
		IF NOT EXISTS (SELECT FROM ferry_new) THEN -- no ferry_new on DELETE
			RETURN NULL;
		END IF;
	END IF;
	IF TG_OP = 'INSERT' THEN
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT n.owner, 0, 0, count(*), sum(128 + coalesce(octet_length(CAST(n."data" AS text)), 0)) FROM ferry_new AS n GROUP BY n.owner
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + excluded.records, bytes = ferry_scopes.bytes + excluded.bytes;
	ELSIF TG_OP = 'UPDATE' THEN
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT d.owner, 0, 0, sum(d.r), sum(d.b) FROM (
			SELECT n.owner, 1 AS r, 128 + coalesce(octet_length(CAST(n."data" AS text)), 0) AS b FROM ferry_new AS n
			UNION ALL
			SELECT o.owner, -1, -(128 + coalesce(octet_length(CAST(o."data" AS text)), 0)) FROM ferry_old AS o) AS d
		GROUP BY d.owner HAVING sum(d.r) <> 0 OR sum(d.b) <> 0
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + excluded.records, bytes = ferry_scopes.bytes + excluded.bytes;
	ELSE
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT o.owner, 0, 0, -count(*), -sum(128 + coalesce(octet_length(CAST(o."data" AS text)), 0)) FROM ferry_old AS o GROUP BY o.owner
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + excluded.records, bytes = ferry_scopes.bytes + excluded.bytes;
	END IF;
	RETURN NULL;
END$$;


--
-- Name: ferry_usage_notes(); Type: FUNCTION; Schema: ferry_prev; Owner: -
--

CREATE FUNCTION ferry_prev.ferry_usage_notes() RETURNS trigger
    LANGUAGE plpgsql
    AS $$BEGIN
	IF TG_OP <> 'DELETE' THEN
		IF NOT EXISTS (SELECT FROM ferry_new) THEN -- no ferry_new on DELETE
			RETURN NULL;
		END IF;
	END IF;
	IF TG_OP = 'INSERT' THEN
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT n.owner, 0, 0, count(*), sum(128 + coalesce(octet_length(CAST(n."title" AS text)), 0) + coalesce(octet_length(CAST(n."body" AS text)), 0) + coalesce(octet_length(CAST(n."tags" AS text)), 0) + coalesce(octet_length(CAST(n."pinned" AS text)), 0)) FROM ferry_new AS n GROUP BY n.owner
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + excluded.records, bytes = ferry_scopes.bytes + excluded.bytes;
	ELSIF TG_OP = 'UPDATE' THEN
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT d.owner, 0, 0, sum(d.r), sum(d.b) FROM (
			SELECT n.owner, 1 AS r, 128 + coalesce(octet_length(CAST(n."title" AS text)), 0) + coalesce(octet_length(CAST(n."body" AS text)), 0) + coalesce(octet_length(CAST(n."tags" AS text)), 0) + coalesce(octet_length(CAST(n."pinned" AS text)), 0) AS b FROM ferry_new AS n
			UNION ALL
			SELECT o.owner, -1, -(128 + coalesce(octet_length(CAST(o."title" AS text)), 0) + coalesce(octet_length(CAST(o."body" AS text)), 0) + coalesce(octet_length(CAST(o."tags" AS text)), 0) + coalesce(octet_length(CAST(o."pinned" AS text)), 0)) FROM ferry_old AS o) AS d
		GROUP BY d.owner HAVING sum(d.r) <> 0 OR sum(d.b) <> 0
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + excluded.records, bytes = ferry_scopes.bytes + excluded.bytes;
	ELSE
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT o.owner, 0, 0, -count(*), -sum(128 + coalesce(octet_length(CAST(o."title" AS text)), 0) + coalesce(octet_length(CAST(o."body" AS text)), 0) + coalesce(octet_length(CAST(o."tags" AS text)), 0) + coalesce(octet_length(CAST(o."pinned" AS text)), 0)) FROM ferry_old AS o GROUP BY o.owner
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + excluded.records, bytes = ferry_scopes.bytes + excluded.bytes;
	END IF;
	RETURN NULL;
END$$;


--
-- Name: ferry_usage_users(); Type: FUNCTION; Schema: ferry_prev; Owner: -
--

CREATE FUNCTION ferry_prev.ferry_usage_users() RETURNS trigger
    LANGUAGE plpgsql
    AS $$BEGIN
	IF TG_OP <> 'DELETE' THEN
		IF NOT EXISTS (SELECT FROM ferry_new) THEN -- no ferry_new on DELETE
			RETURN NULL;
		END IF;
	END IF;
	IF TG_OP = 'INSERT' THEN
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT n.owner, 0, 0, count(*), sum(128 + coalesce(octet_length(CAST(n."name" AS text)), 0) + coalesce(octet_length(CAST(n."email" AS text)), 0) + coalesce(octet_length(CAST(n."password_hash" AS text)), 0)) FROM ferry_new AS n GROUP BY n.owner
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + excluded.records, bytes = ferry_scopes.bytes + excluded.bytes;
	ELSIF TG_OP = 'UPDATE' THEN
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT d.owner, 0, 0, sum(d.r), sum(d.b) FROM (
			SELECT n.owner, 1 AS r, 128 + coalesce(octet_length(CAST(n."name" AS text)), 0) + coalesce(octet_length(CAST(n."email" AS text)), 0) + coalesce(octet_length(CAST(n."password_hash" AS text)), 0) AS b FROM ferry_new AS n
			UNION ALL
			SELECT o.owner, -1, -(128 + coalesce(octet_length(CAST(o."name" AS text)), 0) + coalesce(octet_length(CAST(o."email" AS text)), 0) + coalesce(octet_length(CAST(o."password_hash" AS text)), 0)) FROM ferry_old AS o) AS d
		GROUP BY d.owner HAVING sum(d.r) <> 0 OR sum(d.b) <> 0
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + excluded.records, bytes = ferry_scopes.bytes + excluded.bytes;
	ELSE
		INSERT INTO ferry_scopes (scope, version, purged_version, records, bytes) SELECT o.owner, 0, 0, -count(*), -sum(128 + coalesce(octet_length(CAST(o."name" AS text)), 0) + coalesce(octet_length(CAST(o."email" AS text)), 0) + coalesce(octet_length(CAST(o."password_hash" AS text)), 0)) FROM ferry_old AS o GROUP BY o.owner
		ON CONFLICT (scope) DO UPDATE SET records = ferry_scopes.records + excluded.records, bytes = ferry_scopes.bytes + excluded.bytes;
	END IF;
	RETURN NULL;
END$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: ferry_migration_locks; Type: TABLE; Schema: ferry_prev; Owner: -
--

CREATE TABLE ferry_prev.ferry_migration_locks (
    id bigint NOT NULL,
    table_name character varying
);


--
-- Name: ferry_migration_locks_id_seq; Type: SEQUENCE; Schema: ferry_prev; Owner: -
--

CREATE SEQUENCE ferry_prev.ferry_migration_locks_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: ferry_migration_locks_id_seq; Type: SEQUENCE OWNED BY; Schema: ferry_prev; Owner: -
--

ALTER SEQUENCE ferry_prev.ferry_migration_locks_id_seq OWNED BY ferry_prev.ferry_migration_locks.id;


--
-- Name: ferry_migrations; Type: TABLE; Schema: ferry_prev; Owner: -
--

CREATE TABLE ferry_prev.ferry_migrations (
    id bigint NOT NULL,
    name character varying,
    group_id bigint,
    migrated_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL
);


--
-- Name: ferry_migrations_id_seq; Type: SEQUENCE; Schema: ferry_prev; Owner: -
--

CREATE SEQUENCE ferry_prev.ferry_migrations_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: ferry_migrations_id_seq; Type: SEQUENCE OWNED BY; Schema: ferry_prev; Owner: -
--

ALTER SEQUENCE ferry_prev.ferry_migrations_id_seq OWNED BY ferry_prev.ferry_migrations.id;


--
-- Name: ferry_records; Type: TABLE; Schema: ferry_prev; Owner: -
--

CREATE TABLE ferry_prev.ferry_records (
    model character varying(128) NOT NULL,
    uid character varying(64) NOT NULL,
    owner character varying(255) NOT NULL,
    modify_at timestamp with time zone NOT NULL,
    is_deleted boolean NOT NULL,
    version bigint NOT NULL,
    data text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: ferry_scopes; Type: TABLE; Schema: ferry_prev; Owner: -
--

CREATE TABLE ferry_prev.ferry_scopes (
    scope character varying(255) NOT NULL,
    version bigint NOT NULL,
    purged_version bigint NOT NULL,
    records bigint DEFAULT 0 NOT NULL,
    bytes bigint DEFAULT 0 NOT NULL
);


--
-- Name: notes; Type: TABLE; Schema: ferry_prev; Owner: -
--

CREATE TABLE ferry_prev.notes (
    uid character varying(64) NOT NULL,
    owner character varying(255) NOT NULL,
    modify_at timestamp with time zone NOT NULL,
    is_deleted boolean NOT NULL,
    version bigint NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    title character varying NOT NULL,
    body character varying NOT NULL,
    tags jsonb,
    pinned boolean NOT NULL
);


--
-- Name: token_generations; Type: TABLE; Schema: ferry_prev; Owner: -
--

CREATE TABLE ferry_prev.token_generations (
    user_id character varying NOT NULL,
    generation bigint NOT NULL
);


--
-- Name: users; Type: TABLE; Schema: ferry_prev; Owner: -
--

CREATE TABLE ferry_prev.users (
    uid character varying(64) NOT NULL,
    owner character varying(255) NOT NULL,
    modify_at timestamp with time zone NOT NULL,
    is_deleted boolean NOT NULL,
    version bigint NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    name character varying NOT NULL,
    email character varying NOT NULL,
    password_hash character varying NOT NULL
);


--
-- Name: ferry_migration_locks id; Type: DEFAULT; Schema: ferry_prev; Owner: -
--

ALTER TABLE ONLY ferry_prev.ferry_migration_locks ALTER COLUMN id SET DEFAULT nextval('ferry_prev.ferry_migration_locks_id_seq'::regclass);


--
-- Name: ferry_migrations id; Type: DEFAULT; Schema: ferry_prev; Owner: -
--

ALTER TABLE ONLY ferry_prev.ferry_migrations ALTER COLUMN id SET DEFAULT nextval('ferry_prev.ferry_migrations_id_seq'::regclass);


--
-- Data for Name: ferry_migration_locks; Type: TABLE DATA; Schema: ferry_prev; Owner: -
--



--
-- Data for Name: ferry_migrations; Type: TABLE DATA; Schema: ferry_prev; Owner: -
--

INSERT INTO ferry_prev.ferry_migrations VALUES (1, '20261126000001', 1, '2026-12-02 01:34:06.437826+00');
INSERT INTO ferry_prev.ferry_migrations VALUES (2, '20261126000002', 1, '2026-12-02 01:34:06.448549+00');
INSERT INTO ferry_prev.ferry_migrations VALUES (3, '20261201000003', 1, '2026-12-02 01:34:06.463598+00');


--
-- Data for Name: ferry_records; Type: TABLE DATA; Schema: ferry_prev; Owner: -
--

INSERT INTO ferry_prev.ferry_records VALUES ('data.Setting', 'theme', '706f78f5-7298-440b-ab79-02e643a2ccfd', '2026-11-30 10:00:02+00', false, 4, '{"key":"theme","value":"dark"}', '2026-12-02 01:34:06.570153+00', '2026-12-02 01:34:06.570153+00');
INSERT INTO ferry_prev.ferry_records VALUES ('data.Task', 't1', '706f78f5-7298-440b-ab79-02e643a2ccfd', '2026-11-30 10:00:03+00', false, 5, '{"done":false,"title":"ann''s task"}', '2026-12-02 01:34:06.570153+00', '2026-12-02 01:34:06.570153+00');


--
-- Data for Name: ferry_scopes; Type: TABLE DATA; Schema: ferry_prev; Owner: -
--

INSERT INTO ferry_prev.ferry_scopes VALUES ('706f78f5-7298-440b-ab79-02e643a2ccfd', 6, 0, 5, 833);
INSERT INTO ferry_prev.ferry_scopes VALUES ('b78eeea9-9779-4cef-94d7-a7daef9e2496', 2, 0, 2, 363);


--
-- Data for Name: notes; Type: TABLE DATA; Schema: ferry_prev; Owner: -
--

INSERT INTO ferry_prev.notes VALUES ('n1', '706f78f5-7298-440b-ab79-02e643a2ccfd', '2026-11-30 10:00:00+00', false, 2, '2026-12-02 01:34:06.570153+00', '2026-12-02 01:34:06.570153+00', 'ann''s note', '', 'null', false);
INSERT INTO ferry_prev.notes VALUES ('n2', '706f78f5-7298-440b-ab79-02e643a2ccfd', '2026-11-30 11:00:00+00', true, 6, '2026-12-02 01:34:06.570153+00', '2026-12-02 01:34:06.582967+00', 'ann''s second', '', 'null', false);
INSERT INTO ferry_prev.notes VALUES ('b1', 'b78eeea9-9779-4cef-94d7-a7daef9e2496', '2026-11-30 10:00:00+00', false, 2, '2026-12-02 01:34:06.58493+00', '2026-12-02 01:34:06.58493+00', 'bob''s note', '', 'null', false);


--
-- Data for Name: token_generations; Type: TABLE DATA; Schema: ferry_prev; Owner: -
--



--
-- Data for Name: users; Type: TABLE DATA; Schema: ferry_prev; Owner: -
--

INSERT INTO ferry_prev.users VALUES ('706f78f5-7298-440b-ab79-02e643a2ccfd', '706f78f5-7298-440b-ab79-02e643a2ccfd', '2026-12-02 01:34:06.546253+00', false, 1, '2026-12-02 01:34:06.546257+00', '2026-12-02 01:34:06.546257+00', 'ann-prev', 'ann-prev@example.com', '$2a$04$QBOsyUx1FVBYcnINzSBZ7O.NV.TDK7tzgazBxYf020iCF3wE7eKG.');
INSERT INTO ferry_prev.users VALUES ('b78eeea9-9779-4cef-94d7-a7daef9e2496', 'b78eeea9-9779-4cef-94d7-a7daef9e2496', '2026-12-02 01:34:06.564462+00', false, 1, '2026-12-02 01:34:06.564506+00', '2026-12-02 01:34:06.564506+00', 'bob-prev', 'bob-prev@example.com', '$2a$04$rurNirYtJaSwe1z6pLQ53.qXC/wEvj2dn0QewdE8dep6u1KiaiqTS');


--
-- Name: ferry_migration_locks_id_seq; Type: SEQUENCE SET; Schema: ferry_prev; Owner: -
--

SELECT pg_catalog.setval('ferry_prev.ferry_migration_locks_id_seq', 1, true);


--
-- Name: ferry_migrations_id_seq; Type: SEQUENCE SET; Schema: ferry_prev; Owner: -
--

SELECT pg_catalog.setval('ferry_prev.ferry_migrations_id_seq', 3, true);


--
-- Name: ferry_migration_locks ferry_migration_locks_pkey; Type: CONSTRAINT; Schema: ferry_prev; Owner: -
--

ALTER TABLE ONLY ferry_prev.ferry_migration_locks
    ADD CONSTRAINT ferry_migration_locks_pkey PRIMARY KEY (id);


--
-- Name: ferry_migration_locks ferry_migration_locks_table_name_key; Type: CONSTRAINT; Schema: ferry_prev; Owner: -
--

ALTER TABLE ONLY ferry_prev.ferry_migration_locks
    ADD CONSTRAINT ferry_migration_locks_table_name_key UNIQUE (table_name);


--
-- Name: ferry_migrations ferry_migrations_pkey; Type: CONSTRAINT; Schema: ferry_prev; Owner: -
--

ALTER TABLE ONLY ferry_prev.ferry_migrations
    ADD CONSTRAINT ferry_migrations_pkey PRIMARY KEY (id);


--
-- Name: ferry_records ferry_records_pkey; Type: CONSTRAINT; Schema: ferry_prev; Owner: -
--

ALTER TABLE ONLY ferry_prev.ferry_records
    ADD CONSTRAINT ferry_records_pkey PRIMARY KEY (model, uid);


--
-- Name: ferry_scopes ferry_scopes_pkey; Type: CONSTRAINT; Schema: ferry_prev; Owner: -
--

ALTER TABLE ONLY ferry_prev.ferry_scopes
    ADD CONSTRAINT ferry_scopes_pkey PRIMARY KEY (scope);


--
-- Name: notes notes_pkey; Type: CONSTRAINT; Schema: ferry_prev; Owner: -
--

ALTER TABLE ONLY ferry_prev.notes
    ADD CONSTRAINT notes_pkey PRIMARY KEY (uid);


--
-- Name: token_generations token_generations_pkey; Type: CONSTRAINT; Schema: ferry_prev; Owner: -
--

ALTER TABLE ONLY ferry_prev.token_generations
    ADD CONSTRAINT token_generations_pkey PRIMARY KEY (user_id);


--
-- Name: users users_email_key; Type: CONSTRAINT; Schema: ferry_prev; Owner: -
--

ALTER TABLE ONLY ferry_prev.users
    ADD CONSTRAINT users_email_key UNIQUE (email);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: ferry_prev; Owner: -
--

ALTER TABLE ONLY ferry_prev.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (uid);


--
-- Name: ferry_records_owner_version; Type: INDEX; Schema: ferry_prev; Owner: -
--

CREATE INDEX ferry_records_owner_version ON ferry_prev.ferry_records USING btree (owner, version);


--
-- Name: notes_owner_version; Type: INDEX; Schema: ferry_prev; Owner: -
--

CREATE INDEX notes_owner_version ON ferry_prev.notes USING btree (owner, version);


--
-- Name: users_owner_version; Type: INDEX; Schema: ferry_prev; Owner: -
--

CREATE INDEX users_owner_version ON ferry_prev.users USING btree (owner, version);


--
-- Name: ferry_records ferry_usage_del; Type: TRIGGER; Schema: ferry_prev; Owner: -
--

CREATE TRIGGER ferry_usage_del AFTER DELETE ON ferry_prev.ferry_records REFERENCING OLD TABLE AS ferry_old FOR EACH STATEMENT EXECUTE FUNCTION ferry_prev.ferry_usage_ferry_records();


--
-- Name: notes ferry_usage_del; Type: TRIGGER; Schema: ferry_prev; Owner: -
--

CREATE TRIGGER ferry_usage_del AFTER DELETE ON ferry_prev.notes REFERENCING OLD TABLE AS ferry_old FOR EACH STATEMENT EXECUTE FUNCTION ferry_prev.ferry_usage_notes();


--
-- Name: users ferry_usage_del; Type: TRIGGER; Schema: ferry_prev; Owner: -
--

CREATE TRIGGER ferry_usage_del AFTER DELETE ON ferry_prev.users REFERENCING OLD TABLE AS ferry_old FOR EACH STATEMENT EXECUTE FUNCTION ferry_prev.ferry_usage_users();


--
-- Name: ferry_records ferry_usage_ins; Type: TRIGGER; Schema: ferry_prev; Owner: -
--

CREATE TRIGGER ferry_usage_ins AFTER INSERT ON ferry_prev.ferry_records REFERENCING NEW TABLE AS ferry_new FOR EACH STATEMENT EXECUTE FUNCTION ferry_prev.ferry_usage_ferry_records();


--
-- Name: notes ferry_usage_ins; Type: TRIGGER; Schema: ferry_prev; Owner: -
--

CREATE TRIGGER ferry_usage_ins AFTER INSERT ON ferry_prev.notes REFERENCING NEW TABLE AS ferry_new FOR EACH STATEMENT EXECUTE FUNCTION ferry_prev.ferry_usage_notes();


--
-- Name: users ferry_usage_ins; Type: TRIGGER; Schema: ferry_prev; Owner: -
--

CREATE TRIGGER ferry_usage_ins AFTER INSERT ON ferry_prev.users REFERENCING NEW TABLE AS ferry_new FOR EACH STATEMENT EXECUTE FUNCTION ferry_prev.ferry_usage_users();


--
-- Name: ferry_records ferry_usage_upd; Type: TRIGGER; Schema: ferry_prev; Owner: -
--

CREATE TRIGGER ferry_usage_upd AFTER UPDATE ON ferry_prev.ferry_records REFERENCING OLD TABLE AS ferry_old NEW TABLE AS ferry_new FOR EACH STATEMENT EXECUTE FUNCTION ferry_prev.ferry_usage_ferry_records();


--
-- Name: notes ferry_usage_upd; Type: TRIGGER; Schema: ferry_prev; Owner: -
--

CREATE TRIGGER ferry_usage_upd AFTER UPDATE ON ferry_prev.notes REFERENCING OLD TABLE AS ferry_old NEW TABLE AS ferry_new FOR EACH STATEMENT EXECUTE FUNCTION ferry_prev.ferry_usage_notes();


--
-- Name: users ferry_usage_upd; Type: TRIGGER; Schema: ferry_prev; Owner: -
--

CREATE TRIGGER ferry_usage_upd AFTER UPDATE ON ferry_prev.users REFERENCING OLD TABLE AS ferry_old NEW TABLE AS ferry_new FOR EACH STATEMENT EXECUTE FUNCTION ferry_prev.ferry_usage_users();


--
-- PostgreSQL database dump complete
--

\unrestrict FKPjpJEJ1l3Tepbd6hibyNyVyin8XnY7hnxM5jEKW3D44qbYhyTI4xhZVmHw292

