-- From the project's benchmark generator (shared/bench); kept here so a fresh clone has it.
-- Tracking telemetry table for the pgcache baseline benchmark.
-- One row per GPS fix of a vehicle/asset tracker. id and ts grow together.
DROP TABLE IF EXISTS eventos;
CREATE TABLE eventos (
    id         bigserial PRIMARY KEY,
    device_id  int              NOT NULL,
    ts         timestamptz      NOT NULL,
    lat        double precision NOT NULL,
    lon        double precision NOT NULL,
    speed      real             NOT NULL,
    heading    smallint         NOT NULL,
    status     text             NOT NULL,
    odometer   numeric(12,3)    NOT NULL,
    note       text,                      -- ~10% NULL
    payload    jsonb            NOT NULL  -- ~60 bytes of device extras
);
CREATE INDEX eventos_ts_idx ON eventos (ts);
