//! `pgcache serve` as a real process, called by a real HTTP client: who may call what, plugin
//! uploads checked before compiling, the query API in its three formats, runs streamed,
//! fairness between tenants, graceful shutdown, scheduled refreshes surviving kill -9, and
//! hostile plugins that leave the server and a well-behaved tenant unaffected.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::time::{Duration, Instant};

use pgcache_tests::server::{Server, ServerSetup, run_plugin};
use pgcache_tests::{Scratch, guests};
use serde_json::{Value as Json, json};

const QUERY_RIGHTS: &str = "operations = [\"query\", \"incremental-query\", \"execute\", \"cache-stats\", \"cache-clear\"]";

async fn upload(
    client: &reqwest::Client,
    server: &Server,
    token: &str,
    name: &str,
    path: &str,
) -> (u16, Json) {
    let response = client
        .put(server.url(&format!("/v1/plugins/{name}")))
        .bearer_auth(token)
        .body(std::fs::read(path).unwrap())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Json::Null))
}

fn last(events: &[Json]) -> &Json {
    events.last().expect("a run ends with an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_call_what_and_the_query_api() {
    let s = Scratch::new("serve_api").await;
    s.sql("CREATE TABLE {s}.t (id bigint, name text, doc jsonb);
           INSERT INTO {s}.t SELECT g, 'n' || g, '{\"big\": 12345678901234567890123}' FROM generate_series(1, 5) g;")
        .await;
    let server = Server::start(ServerSetup {
        scratch: &s,
        a: QUERY_RIGHTS,
        b: "",
        extra: "",
        drain: 5.0,
        args: &[],
    })
    .await;
    let client = reqwest::Client::new();
    let [a, b] = server.tokens.clone();

    // No token, a wrong token: 401, and no token ever comes back.
    for token in [None, Some("pgc_not_a_token")] {
        let mut request = client.get(server.url("/v1/stats"));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body = response.text().await.unwrap();
        assert!(!body.contains("pgc_"), "{body}");
    }

    // Uploads: checked before compiling, a 400 naming what is wrong.
    let (status, body) = upload(&client, &server, &a, "probe", guests::PROBE).await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("pgcache:db/database"))
    );
    let (status, body) = upload(&client, &server, &a, "bad", guests::UNKNOWN_IMPORT).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("acme:extra/thing"),
        "{body}"
    );
    let garbage = client
        .put(server.url("/v1/plugins/garbage"))
        .bearer_auth(&a)
        .body("this is not wasm")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let module = client
        .put(server.url("/v1/plugins/module"))
        .bearer_auth(&a)
        .body(vec![0u8, b'a', b's', b'm', 1, 0, 0, 0])
        .send()
        .await
        .unwrap();
    assert_eq!(module.status(), 400);
    assert!(module.text().await.unwrap().contains("not a component"));

    // Another tenant's plugin is not there for b.
    let theirs = client
        .get(server.url("/v1/plugins/probe"))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 404);
    let (status, _) = run_plugin(&client, &server, &b, "probe", &["first-call"]).await;
    assert_eq!(status, 404);
    let (status, events) = run_plugin(&client, &server, &a, "probe", &["first-call"]).await;
    assert_eq!(status, 200);
    assert_eq!(last(&events)["exit_code"], 0, "{events:?}");

    // The query API: Arrow IPC by default, CSV and NDJSON by Accept.
    let sql = format!("SELECT id, name, doc FROM {} WHERE id <= $1", s.table("t"));
    let ask = |accept: &'static str| {
        client
            .post(server.url("/v1/query"))
            .bearer_auth(&a)
            .header("accept", accept)
            .json(&json!({ "sql": sql, "params": [3] }))
            .send()
    };
    let ipc = ask(pgcache::serve::ARROW_STREAM).await.unwrap();
    assert_eq!(ipc.headers()["content-type"], pgcache::serve::ARROW_STREAM);
    let bytes = ipc.bytes().await.unwrap();
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 3);
    let csv = ask("text/csv").await.unwrap();
    assert_eq!(csv.headers()["pgcache-origin"], "hit");
    assert!(csv.text().await.unwrap().starts_with("id,name,doc\n1,n1,"));
    let ndjson = ask("application/x-ndjson")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(ndjson.lines().count(), 3);
    assert!(
        ndjson.contains("12345678901234567890123"),
        "json kept exactly: {ndjson}"
    );

    // Errors keep SQLSTATE; b may not execute; a may, within its rights.
    let missing = client
        .post(server.url("/v1/query"))
        .bearer_auth(&a)
        .json(&json!({ "sql": "SELECT * FROM no_such_table" }))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 422);
    let body: Json = missing.json().await.unwrap();
    assert_eq!(body["error"]["sqlstate"], "42P01", "{body}");
    let denied = client
        .post(server.url("/v1/execute"))
        .bearer_auth(&b)
        .json(&json!({ "sql": format!("DELETE FROM {}", s.table("t")) }))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let executed: Json = client
        .post(server.url("/v1/execute"))
        .bearer_auth(&a)
        .json(&json!({ "sql": format!("INSERT INTO {} VALUES ($1, 'x', NULL)", s.table("t")), "params": [6] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(executed["rows"], 1);

    // Stats and clear: only the tenant's own cache, named by the tenant, never by a path.
    let stats: Json = client
        .get(server.url("/v1/stats"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["cache_dir"], "a");
    assert_eq!(stats["total_files"], 1);
    let cleared: Json = client
        .delete(server.url("/v1/cache?pattern="))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["removed"], 1);

    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "pgcache_plugin_runs_total",
        "pgcache_cache_hits",
        "pgcache_pool_connections_in_use",
        "pgcache_plugin_run_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} in\n{metrics}");
    }
    assert!(!metrics.contains("pgc_"));
    // Runs reuse pooled instances wherever this machine's address space holds the pool.
    let pooling = format!(
        "pgcache_instance_pooling {}",
        u8::from(pgcache::wasm::pooling_fits())
    );
    assert!(metrics.contains(&pooling), "{pooling} in\n{metrics}");
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_flood_is_refused_without_starving_another() {
    let s = Scratch::new("serve_fair").await;
    let server = Server::start(ServerSetup {
        scratch: &s,
        a: "[tenants.a.limits]\nmax_concurrent = 1\nmax_queued = 1\nwall_seconds = 3",
        b: "[tenants.b.limits]\nmax_concurrent = 8\nmax_queued = 64",
        extra: "",
        drain: 5.0,
        args: &[],
    })
    .await;
    let client = reqwest::Client::new();
    let [a, b] = server.tokens.clone();
    assert_eq!(
        upload(&client, &server, &a, "probe", guests::PROBE).await.0,
        201
    );
    assert_eq!(
        upload(&client, &server, &b, "probe", guests::PROBE).await.0,
        201
    );

    // a floods with 25 runs that sleep until their 3 s wall-clock limit.
    let started = Instant::now();
    let flood: Vec<_> = (0..25)
        .map(|_| {
            let (client, server_url, a) = (
                client.clone(),
                server.url("/v1/plugins/probe/runs"),
                a.clone(),
            );
            tokio::spawn(async move {
                let r = client
                    .post(server_url)
                    .bearer_auth(a)
                    .json(&json!({"args": ["sleep"]}))
                    .send()
                    .await
                    .unwrap();
                (
                    r.status().as_u16(),
                    r.headers().get("retry-after").is_some(),
                    r.text().await.unwrap(),
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // b's 25 concurrent runs all complete, well before a's first run is stopped.
    let quick: Vec<_> = (0..25)
        .map(|_| {
            let (client, b) = (client.clone(), b.clone());
            let url = server.url("/v1/plugins/probe/runs");
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .bearer_auth(b)
                    .json(&json!({"args": ["first-call"]}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            })
        })
        .collect();
    for run in quick {
        let (status, text) = run.await.unwrap();
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("\"exit_code\":0"), "{text}");
    }
    let b_done = started.elapsed();
    let mut refused = 0;
    let mut stopped = 0;
    for run in flood {
        let (status, retry_after, text) = run.await.unwrap();
        match status {
            429 => {
                assert!(retry_after, "429 carries Retry-After");
                refused += 1;
            }
            200 => {
                assert!(text.contains("wall-clock time"), "{text}");
                stopped += 1;
            }
            other => panic!("{other}: {text}"),
        }
    }
    assert_eq!(refused + stopped, 25);
    assert!(
        refused >= 20,
        "a held 1 running and 1 queued: {refused} refused"
    );
    assert!(
        b_done < Duration::from_secs(3),
        "b waited for a's flood: {b_done:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_runs_finish_then_stops_them_with_a_cause() {
    let s = Scratch::new("serve_stop").await;
    let mut server = Server::start(ServerSetup {
        scratch: &s,
        a: "",
        b: "",
        extra: "",
        drain: 1.5,
        args: &[],
    })
    .await;
    let client = reqwest::Client::new();
    let [a, _] = server.tokens.clone();
    assert_eq!(
        upload(&client, &server, &a, "probe", guests::PROBE).await.0,
        201
    );
    let url = server.url("/v1/plugins/probe/runs");
    let sleeper = {
        let (client, a, url) = (client.clone(), a.clone(), url.clone());
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(a)
                .json(&json!({"args": ["sleep"]}))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New work is refused while draining (or the listener is already closed).
    match client
        .post(&url)
        .bearer_auth(&a)
        .json(&json!({"args": ["first-call"]}))
        .send()
        .await
    {
        Ok(r) => assert_eq!(r.status(), 503),
        Err(e) => assert!(e.is_connect(), "{e}"),
    }
    let text = sleeper.await.unwrap();
    assert!(
        text.contains("the server shut down before the run finished"),
        "{text}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_refreshes_keep_entries_fresh_and_survive_kill_9() {
    let s = Scratch::new("serve_sched").await;
    s.sql("CREATE TABLE {s}.ev (id bigint PRIMARY KEY, v text); INSERT INTO {s}.ev SELECT g, 'x' FROM generate_series(1, 2000) g;")
        .await;
    let sql = format!("SELECT id, v FROM {}", s.table("ev"));
    let extra = format!(
        "[[refresh]]\ntenant = \"a\"\nquery = {sql:?}\ncolumn = \"id\"\nevery_seconds = 0.05\n"
    );
    let mut dir = tempfile::tempdir().unwrap();
    let mut next = 2001;
    for round in 0..6 {
        let server = Server::start_in(
            ServerSetup {
                scratch: &s,
                a: QUERY_RIGHTS,
                b: "",
                extra: &extra,
                drain: 1.0,
                args: &[],
            },
            dir,
        )
        .await;
        s.sql(&format!(
            "INSERT INTO {{s}}.ev SELECT g, 'y' FROM generate_series({next}, {}) g",
            next + 499
        ))
        .await;
        next += 500;
        tokio::time::sleep(Duration::from_millis(150 + 97 * round)).await;
        let mut server = server;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    }
    // The cache, as one more server reads it: whole, every row once, the table's rows.
    let server = Server::start_in(
        ServerSetup {
            scratch: &s,
            a: QUERY_RIGHTS,
            b: "",
            extra: &extra,
            drain: 1.0,
            args: &[],
        },
        dir,
    )
    .await;
    let client = reqwest::Client::new();
    let [a, _] = server.tokens.clone();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats: Json = client
        .get(server.url("/v1/stats"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schedule = &stats["schedules"][0]["last"];
    assert!(schedule["runs"].as_u64().unwrap() >= 1, "{stats}");
    assert!(schedule["error"].is_null(), "{stats}");
    let text = client
        .post(server.url("/v1/query"))
        .bearer_auth(&a)
        .header("accept", "text/csv")
        .json(&json!({ "sql": sql, "incremental": "id" }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ids: Vec<i64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    let expected: Vec<i64> = (1..next).collect();
    assert_eq!(ids, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_leave_the_server_and_other_tenants_unaffected() {
    let s = Scratch::new("serve_hostile").await;
    s.sql("CREATE TABLE {s}.victim (id int); INSERT INTO {s}.victim VALUES (1);")
        .await;
    let limits = "[tenants.a.limits]\nmemory_mib = 32\ncpu_seconds = 1\nwall_seconds = 10\nmax_concurrent = 8";
    let server = Server::start(ServerSetup {
        scratch: &s,
        a: limits,
        b: "",
        extra: "",
        drain: 5.0,
        args: &[],
    })
    .await;
    let client = reqwest::Client::new();
    let [a, b] = server.tokens.clone();
    for (name, path) in [
        ("loop", guests::HOSTILE_LOOP),
        ("memory", guests::HOSTILE_MEMORY),
        ("edge", guests::HOSTILE_EDGE),
        ("snoop", guests::HOSTILE_SNOOP),
    ] {
        assert_eq!(
            upload(&client, &server, &a, name, path).await.0,
            201,
            "{name}"
        );
    }
    assert_eq!(
        upload(&client, &server, &b, "probe", guests::PROBE).await.0,
        201
    );
    let victim = s.table("victim");
    let drop_it = format!("e:-- x\rDROP TABLE {victim}");
    let hostile = [
        ("loop", vec![]),
        ("memory", vec![]),
        (
            "edge",
            vec![
                "q:SELECT pg_read_file('/etc/passwd') AS f",
                drop_it.as_str(),
                "q:SELECT lo_from_bytea(0, 'x') AS o",
            ],
        ),
        ("snoop", vec!["/"]),
    ];
    let runs: Vec<_> = hostile
        .iter()
        .map(|(name, args)| {
            let (client, a, url) = (
                client.clone(),
                a.clone(),
                server.url(&format!("/v1/plugins/{name}/runs")),
            );
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(a)
                    .json(&json!({ "args": args }))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (status, events) = run_plugin(&client, &server, &b, "probe", &["first-call"]).await;
    assert_eq!(status, 200);
    assert_eq!(
        last(&events)["exit_code"],
        0,
        "the well-behaved tenant ran: {events:?}"
    );
    let outcomes: Vec<String> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(outcomes[0].contains("CPU time limit"), "{}", outcomes[0]);
    assert!(outcomes[1].contains("memory limit"), "{}", outcomes[1]);
    assert_eq!(outcomes[2].matches("denied").count(), 3, "{}", outcomes[2]);
    assert!(!outcomes[3].contains("root:"), "{}", outcomes[3]);
    assert_eq!(s.scalar::<i64>("SELECT count(*) FROM {s}.victim").await, 1);
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_a_metrics_token_once_one_is_configured() {
    let s = Scratch::new("serve_metrics").await;
    let (token, hash) = pgcache::serve::auth::new_token().unwrap();
    let extra = format!("[serve]\nmetrics_tokens_sha256 = [{hash:?}]\n");
    let server = Server::start(ServerSetup {
        scratch: &s,
        a: "",
        b: "",
        extra: &extra,
        drain: 1.0,
        args: &[],
    })
    .await;
    let client = reqwest::Client::new();
    let [tenant, _] = server.tokens.clone();
    for bearer in [None, Some(tenant.as_str()), Some("pgc_wrong")] {
        let mut request = client.get(server.url("/metrics"));
        if let Some(t) = bearer {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404, "{bearer:?}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("pgcache_instance_pooling"), "{body}");
    }
    let metrics = client
        .get(server.url("/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("pgcache_instance_pooling")
    );
}
