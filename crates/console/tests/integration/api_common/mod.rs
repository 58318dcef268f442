//! A broker with its console on 127.0.0.1:0, and a small HTTP client for the API tests.
#![allow(dead_code)]

pub(crate) use crate::common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{header, Method, Request};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use weir_broker::BrokerConfig;
use weir_console::Console;

pub use common::TestBroker;

/// How often the tests' consoles sample the groups' lag.
pub const LAG_SAMPLE_INTERVAL_TEST: std::time::Duration = std::time::Duration::from_millis(50);

pub struct Api {
    pub broker: TestBroker,
    pub addr: SocketAddr,
    client: Client<HttpConnector, Body>,
    /// The `Authorization` header sent with every request, once [`Api::log_in`] set it.
    authorization: Option<String>,
}

/// One answer: its status, content type and body (as JSON when it parses, else a string).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    /// The `WWW-Authenticate` challenge, when the answer has one.
    pub www_authenticate: Option<String>,
}

impl Answer {
    /// Asserts the answer is the API's JSON error with this status and code, one sentence
    /// and nothing else.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.content_type, "application/json", "{self:?}");
        assert_eq!(self.body["code"], code, "{self:?}");
        let message = self.body["error"].as_str().expect("an error sentence");
        assert!(message.ends_with('.'), "{message}");
        assert!(message.chars().next().unwrap().is_uppercase(), "{message}");
        assert_eq!(self.body.as_object().unwrap().len(), 2, "{self:?}");
    }

    pub fn ok(self) -> Value {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {self:?}"
        );
        self.body
    }
}

impl Api {
    pub async fn start() -> Api {
        Api::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut BrokerConfig)) -> Api {
        let broker = TestBroker::start(|c| {
            // Groups form at once, so a test's member joins without waiting.
            c.group_initial_rebalance_delay_ms = 0;
            tweak(c);
        })
        .await;
        let mut console = Console::bind("127.0.0.1:0".parse().unwrap(), &broker.state)
            .await
            .unwrap();
        // Lag samples come quickly, so a test sees a history without waiting.
        console.set_lag_sample_interval(LAG_SAMPLE_INTERVAL_TEST);
        console.set_throughput_sample_interval(LAG_SAMPLE_INTERVAL_TEST);
        let addr = console.local_addr();
        tokio::spawn(console.run(std::future::pending()));
        let client = Client::builder(TokioExecutor::new()).build_http();
        Api {
            broker,
            addr,
            client,
            authorization: None,
        }
    }

    /// Sends `Authorization: Basic` with every later request (None: no header).
    pub fn log_in(&mut self, user_and_password: Option<(&str, &str)>) {
        use base64::Engine;
        self.authorization = user_and_password.map(|(user, password)| {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {encoded}")
        });
    }

    /// Sends this `Authorization` header as it is with every later request.
    pub fn set_authorization(&mut self, value: &str) {
        self.authorization = Some(value.to_string());
    }

    /// Sends raw bytes with a content type.
    pub async fn raw(&self, method: Method, path: &str, body: Vec<u8>) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(authorization) = &self.authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let request = request.body(Body::from(body)).unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let www_authenticate = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer {
            status,
            content_type,
            body,
            www_authenticate,
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.raw(method, path, bytes).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str, body: Option<Value>) -> Answer {
        self.send(Method::DELETE, path, body).await
    }

    /// Creates a topic through the API.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        self.post(
            "/api/v1/topics",
            serde_json::json!({"name": name, "partitions": partitions}),
        )
        .await
        .ok();
    }

    /// Produces text records to one partition through the API; their offsets.
    pub async fn produce(&self, topic: &str, partition: i32, values: &[&str]) -> Vec<i64> {
        let mut offsets = Vec::new();
        for v in values {
            let body = self
                .post(
                    &format!("/api/v1/topics/{topic}/messages"),
                    serde_json::json!({"partition": partition, "value": v}),
                )
                .await
                .ok();
            offsets.push(body["offset"].as_i64().unwrap());
        }
        offsets
    }

    pub async fn stop(self) {
        self.broker.stop().await;
    }
}
