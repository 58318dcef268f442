//! Connections and error classification.

use crate::common;

use std::time::{Duration, Instant};

use weir_cluster::pg::{Connector, Session, CONNECT_TIMEOUT_MS};
use weir_cluster::ClusterError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_or_hung_connect_fails_retriably_within_the_bound() {
    // Goal: no server (refused) and a server that accepts but never answers (hung) both
    // fail within CONNECT_TIMEOUT_MS, as errors a caller may retry. Needs no PostgreSQL.
    let refused = Connector::new("postgresql://weir@127.0.0.1:1/x")
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    assert!(refused.retriable(), "{refused:?}");

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let accepted = tokio::spawn(async move {
        // Hold the connections open and say nothing.
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let hung = Connector::new(&format!("postgresql://weir@127.0.0.1:{port}/x"))
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(hung, ClusterError::ConnectTimeout { .. }),
        "{hung:?}"
    );
    assert!(hung.retriable());
    assert!(
        took < Duration::from_millis(CONNECT_TIMEOUT_MS) + Duration::from_secs(1),
        "took {took:?}"
    );
    accepted.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_reconnects_and_errors_say_whether_to_retry() {
    // Goal: a bad statement is not retriable, leaves the connection in use and names its
    // SQLSTATE; a connection ended by the server is retriable, and the session's next
    // call has a new connection.
    let Some(url) = common::database("session_errors").await else {
        return;
    };
    let session = Session::new(Connector::new(&url).unwrap());
    let client = session.client().await.unwrap();
    let bad = ClusterError::from(client.batch_execute("SELEC 1").await.unwrap_err());
    assert!(!bad.retriable(), "{bad:?}");
    assert!(bad.to_string().contains("42601"), "{bad}");
    assert!(!bad.connection_lost());

    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let other = common::connect(&url).await;
    other
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let timeout = Duration::from_secs(5);
    common::wait_for("the backend exits", timeout, || async {
        let gone: bool = other
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        gone.then_some(())
    })
    .await;
    // At most the first statement after the kill fails (retriably, and the session drops
    // the connection); if the client had already seen the socket end, the session has
    // connected anew and it succeeds. Either way the next one runs on a new backend.
    let first = session
        .bounded("a ping", timeout, async {
            session.client().await?.batch_execute("SELECT 1").await?;
            Ok(())
        })
        .await;
    if let Err(e) = first {
        assert!(e.retriable() && e.connection_lost(), "{e:?}");
    }
    let new_pid: i32 = session
        .bounded("the pid", timeout, async {
            Ok(session
                .client()
                .await?
                .query_one("SELECT pg_backend_pid()", &[])
                .await?
                .get(0))
        })
        .await
        .unwrap();
    assert_ne!(new_pid, pid);
}
