-- From the project's benchmark generator (shared/bench); kept here so a fresh clone has it.
-- Appends :n rows with ids :start .. :start + :n - 1 (psql variables).
-- Deterministic for a given :start (setseed), ts strictly increasing with id.
SELECT setseed(((:start % 1999) / 1999.0)::float8) \gset
INSERT INTO eventos (id, device_id, ts, lat, lon, speed, heading, status, odometer, note, payload)
SELECT g,
       1 + floor(random() * 500)::int,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '250 milliseconds',
       -23.55 + (random() - 0.5) * 2.0,
       -46.63 + (random() - 0.5) * 2.0,
       (random() * random() * 120)::real,
       floor(random() * 360)::smallint,
       (ARRAY['moving','moving','moving','moving','moving',
              'stopped','stopped','idle','offline','alarm'])[1 + floor(random() * 10)::int],
       round((1000 + g * 0.0137 + random() * 50)::numeric, 3),
       CASE WHEN random() < 0.10 THEN NULL
            ELSE (ARRAY['entrega realizada','cliente ausente','parada para almoco',
                        'abastecimento','rota alterada pelo operador','aguardando carga',
                        'ignicao desligada','manutencao preventiva'])[1 + floor(random() * 8)::int]
                 || ' #' || (g % 9973)
       END,
       jsonb_build_object('fw', '2.4.1',
                          'bat', round((11.5 + random() * 2.8)::numeric, 2),
                          'ign', random() > 0.3,
                          'sat', 4 + floor(random() * 9)::int,
                          'hdop', round((0.6 + random() * 2.4)::numeric, 1))
FROM generate_series(:start::bigint, :start::bigint + :n - 1) AS g;
SELECT setval('eventos_id_seq', (SELECT max(id) FROM eventos));
