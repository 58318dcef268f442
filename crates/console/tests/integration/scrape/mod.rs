//! What the `/metrics` tests share: a broker with the console on it, a plain HTTP GET, and
//! reading samples out of the OpenMetrics text.
#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_broker::BrokerConfig;
use weir_console::Console;

use crate::common;

pub struct HttpResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// One HTTP/1.1 GET on a fresh connection, read until the server closes it.
pub async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    HttpResponse {
        status,
        content_type,
        body: body.to_string(),
    }
}

/// The body of one scrape.
pub async fn scrape(addr: SocketAddr) -> String {
    let resp = get(addr, "/metrics").await;
    assert_eq!(resp.status, 200);
    resp.body
}

/// The values of the samples of `name` whose labels contain every one of `labels` (each
/// written as `key="value"`), in the scrape's order.
pub fn samples(text: &str, name: &str, labels: &[&str]) -> Vec<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            series_name == name && labels.iter().all(|want| series_labels.contains(want))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .collect()
}

/// The sum of the samples of `name` whose labels contain every one of `labels`; 0 when
/// there are none.
pub fn sample_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    samples(text, name, labels).iter().sum()
}

/// Whether the scrape has any sample of `name`.
pub fn has_sample(text: &str, name: &str) -> bool {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.split([' ', '{']).next() == Some(name))
}

pub async fn start() -> (common::TestBroker, SocketAddr) {
    start_with(|_| {}).await
}

/// A broker configured by `tweak`, with the console on 127.0.0.1:0.
pub async fn start_with(tweak: impl FnOnce(&mut BrokerConfig)) -> (common::TestBroker, SocketAddr) {
    let broker = common::TestBroker::start(tweak).await;
    let console = Console::bind("127.0.0.1:0".parse().unwrap(), &broker.state)
        .await
        .unwrap();
    let http = console.local_addr();
    tokio::spawn(console.run(std::future::pending()));
    (broker, http)
}
