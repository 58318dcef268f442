//! Groups in a cluster: the group coordinator runs on the controller alone, so a broker
//! that is not the controller answers the console's group pages and the API's group
//! routes by forwarding the request to the controller's HTTP listener, which every broker
//! of a cluster registers beside its Kafka listeners
//! ([`weir_meta::membership::HTTP_ENDPOINT`]). The controller answers as if asked
//! directly: the same JSON, the same pages, its lag history and rebalances, its login
//! check of the same `Authorization` header (the users are the cluster's).
//!
//! A forwarded request carries [`FORWARDED_BY`] and is never forwarded again: two brokers
//! that briefly disagree on the controller answer 503 instead of passing a request back
//! and forth (a forwarded request that reaches a broker that is not the controller
//! either is answered 503). Nothing is forwarded while the ACL authorizer is on, on
//! either side (host ACLs would be checked against the forwarding broker's address
//! instead of the caller's), nor what came in over HTTPS (the login would go on in
//! clear), nor to a controller whose listener serves HTTPS or cannot be reached: those
//! answer 503 naming the controller's console. A forwarded change (an offset reset, a
//! deletion) that the controller does not answer in time is answered 504, saying that it
//! may have been made.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use weir_broker::state::BrokerState;
use weir_meta::membership::{BrokerEndpoint, HTTPS_ENDPOINT, HTTP_ENDPOINT};

use crate::api::{ApiContext, API_BODY_BYTES_MAX};
use crate::errors::HttpError;

/// Set on a forwarded request, to the forwarding broker's node id.
pub const FORWARDED_BY: &str = "x-weir-forwarded-by";
/// How long the controller may take to answer a forwarded read (GET, HEAD).
const FORWARD_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// How long it may take to answer a forwarded change (an offset reset over many
/// partitions); a change that times out may still have been made, and the answer says so.
const FORWARD_CHANGE_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest answer taken from the controller (a page of a large group).
const FORWARD_RESPONSE_BYTES_MAX: usize = 32 << 20;
/// The request headers passed on; the rest (hop-by-hop ones among them) stay behind.
const HEADERS_PASSED: [header::HeaderName; 4] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
];
/// The response headers passed back.
const RESPONSE_HEADERS_PASSED: [header::HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::WWW_AUTHENTICATE,
    header::LOCATION,
];

/// Where this broker's group requests go, when not to its own coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elsewhere {
    /// The controller, whose coordinator holds the groups.
    pub node_id: i32,
    /// Its HTTP listener as registered, and whether it serves HTTPS; `None` if it has none.
    pub endpoint: Option<(BrokerEndpoint, bool)>,
}

impl Elsewhere {
    /// The controller's console, for a person to open.
    fn console(&self) -> String {
        match &self.endpoint {
            Some((e, https)) => format!(
                "{}://{}",
                if *https { "https" } else { "http" },
                e.authority()
            ),
            None => "its own HTTP address".to_string(),
        }
    }

    /// The controller's HTTP listener, or why a request that came in over HTTPS or not
    /// (`https_here`) cannot be forwarded to it.
    fn target(&self, broker: &BrokerState, https_here: bool) -> Result<&BrokerEndpoint, HttpError> {
        let why = if broker.authorizer_enabled() {
            "with ACLs on, group requests are not forwarded between brokers"
        } else if https_here {
            "a request that came in over HTTPS is not forwarded over plain HTTP"
        } else {
            match &self.endpoint {
                None => "it has no HTTP listener the other brokers can reach",
                Some((_, true)) => "group requests are not forwarded to an HTTPS listener",
                Some((endpoint, false)) => return Ok(endpoint),
            }
        };
        Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "coordinator_elsewhere",
            format!(
                "The consumer groups are coordinated by broker {} (the controller), and {why}: open its console at {}.",
                self.node_id,
                self.console()
            ),
        ))
    }
}

/// `None` when this broker's own coordinator answers group requests (it runs, or it is
/// loading on the controller and will answer soon); otherwise the controller to ask.
pub fn coordinator_elsewhere(broker: &BrokerState) -> Option<Elsewhere> {
    if broker.groups().is_some() || broker.is_controller() {
        return None;
    }
    let node_id = broker.membership().controller();
    // Any endpoint stands for this broker: only the controller's is looked at.
    let this_broker = BrokerEndpoint {
        node_id: broker.config.node_id,
        host: String::new(),
        port: 0,
    };
    let find = |name: &str| {
        broker
            .membership()
            .brokers(name, &this_broker)
            .into_iter()
            .find(|b| b.node_id == node_id && b.node_id != this_broker.node_id)
    };
    let endpoint = find(HTTP_ENDPOINT)
        .map(|e| (e, false))
        .or_else(|| find(HTTPS_ENDPOINT).map(|e| (e, true)));
    Some(Elsewhere { node_id, endpoint })
}

/// Whether a path is one of the group routes: the API's and the console's pages.
fn is_group_path(path: &str) -> bool {
    ["/api/v1/groups", "/groups"].iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The middleware in front of the routes, behind the login: a group route on a broker
/// whose coordinator runs elsewhere is answered by the controller.
pub async fn group_routes(State(ctx): State<ApiContext>, request: Request, next: Next) -> Response {
    if !is_group_path(request.uri().path()) {
        return next.run(request).await;
    }
    let page = !request.uri().path().starts_with("/api/");
    let answer = |e: HttpError| {
        if page {
            crate::ui::error_page(&ctx, crate::ui::layout::Section::Groups, e)
        } else {
            e.into_response()
        }
    };
    if request.headers().contains_key(FORWARDED_BY) && ctx.broker.authorizer_enabled() {
        // The caller's address is the forwarding broker's: host ACLs cannot be checked.
        return answer(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "coordinator_elsewhere",
            format!(
                "Another broker forwarded this group request, but broker {} checks ACLs and does not take forwarded requests: ask its console directly.",
                ctx.broker.config.node_id
            ),
        ));
    }
    let Some(elsewhere) = coordinator_elsewhere(&ctx.broker) else {
        return next.run(request).await;
    };
    if let Some(from) = request.headers().get(FORWARDED_BY) {
        // Never forwarded twice.
        let from = from.to_str().unwrap_or("?");
        return answer(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "coordinator_not_available",
            format!(
                "Broker {from} forwarded this group request to broker {}, which is not the controller either (broker {} is): the brokers disagree for a moment, or the address broker {} registered for its HTTP listener leads elsewhere; try again.",
                ctx.broker.config.node_id, elsewhere.node_id, ctx.broker.config.node_id
            ),
        ));
    }
    match forward(&ctx, &elsewhere, request).await {
        Ok(response) => response,
        Err(e) => answer(e),
    }
}

/// A GET of one of the controller's API routes on behalf of a caller who sent
/// `authorization`, its JSON answer parsed; for a route that needs group data while it
/// answers something else (the overview, `GET /cluster`).
pub async fn get_json<T: serde::de::DeserializeOwned>(
    ctx: &ApiContext,
    elsewhere: &Elsewhere,
    path_and_query: &str,
) -> Result<T, HttpError> {
    let mut request = Request::get(path_and_query)
        .body(Body::empty())
        .map_err(|e| internal(format!("The forwarded request could not be built: {e}.")))?;
    if let Some(authorization) = &ctx.authorization {
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, authorization.clone());
    }
    let response = forward(ctx, elsewhere, request).await?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| internal(format!("The controller's answer could not be read: {e}.")))?
        .to_bytes();
    if !status.is_success() {
        // The controller's error, as it said it.
        let said: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let sentence = said
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(|v| v.as_str())
            .unwrap_or("The controller refused the request.")
            .to_string();
        return Err(HttpError::new(status, "controller_refused", sentence));
    }
    serde_json::from_slice(&body).map_err(|e| {
        internal(format!(
            "The controller's answer to {path_and_query} is not what this broker expects ({e}); are both brokers the same version of weir?"
        ))
    })
}

/// Sends `request` to the controller's HTTP listener and returns its answer, or why not.
async fn forward(
    ctx: &ApiContext,
    elsewhere: &Elsewhere,
    request: Request,
) -> Result<Response, HttpError> {
    let endpoint = elsewhere.target(&ctx.broker, ctx.https)?;
    let unreachable = |reason: String| {
        HttpError::new(
            StatusCode::BAD_GATEWAY,
            "coordinator_unreachable",
            format!(
                "The consumer groups are coordinated by broker {} (the controller), whose console at {} did not answer ({reason}); try again in a moment.",
                elsewhere.node_id,
                elsewhere.console()
            ),
        )
    };
    let (parts, body) = request.into_parts();
    let change = !matches!(parts.method, Method::GET | Method::HEAD);
    let timeout = if change {
        FORWARD_CHANGE_TIMEOUT
    } else {
        FORWARD_READ_TIMEOUT
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());
    let uri: Uri = format!("http://{}{path_and_query}", endpoint.authority())
        .parse()
        .map_err(|e| {
            internal(format!(
                "The controller's address does not make a URL: {e}."
            ))
        })?;
    let body = Limited::new(body, API_BODY_BYTES_MAX)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                HttpError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!(
                        "The request body is larger than the API takes ({API_BODY_BYTES_MAX} bytes)."
                    ),
                )
            } else {
                HttpError::bad_request(
                    "unreadable_body",
                    format!("The request body could not be read: {e}."),
                )
            }
        })?
        .to_bytes();
    let mut outgoing = Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .body(Body::from(body))
        .map_err(|e| internal(format!("The forwarded request could not be built: {e}.")))?;
    for name in HEADERS_PASSED {
        if let Some(value) = parts.headers.get(&name) {
            outgoing.headers_mut().insert(name, value.clone());
        }
    }
    outgoing
        .headers_mut()
        .insert(FORWARDED_BY, HeaderValue::from(ctx.broker.config.node_id));
    static CLIENT: OnceLock<Client<HttpConnector, Body>> = OnceLock::new();
    let client = CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build_http());
    let answer = tokio::time::timeout(timeout, async {
        let response = client.request(outgoing).await.map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let bytes = Limited::new(body, FORWARD_RESPONSE_BYTES_MAX)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((parts, bytes))
    })
    .await
    .map_err(|_| {
        if change {
            HttpError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "coordinator_timeout",
                format!(
                    "Broker {} (the controller) did not answer this change within {}s; it may still have been made: look at the group before trying again.",
                    elsewhere.node_id,
                    timeout.as_secs()
                ),
            )
        } else {
            unreachable(format!("no answer within {}s", timeout.as_secs()))
        }
    })?
    .map_err(unreachable)?;
    let (parts, bytes) = answer;
    let mut response = Response::builder().status(parts.status);
    for name in RESPONSE_HEADERS_PASSED {
        if let Some(value) = parts.headers.get(&name) {
            response = response.header(name, value.clone());
        }
    }
    response.body(Body::from(bytes)).map_err(|e| {
        internal(format!(
            "The controller's answer could not be passed on: {e}."
        ))
    })
}

fn internal(message: String) -> HttpError {
    HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

#[cfg(test)]
mod tests {
    use super::is_group_path;

    #[test]
    fn group_paths_are_the_group_routes_and_pages_only() {
        for path in [
            "/groups",
            "/groups/orders-app",
            "/api/v1/groups",
            "/api/v1/groups/g/offsets/reset",
        ] {
            assert!(is_group_path(path), "{path}");
        }
        for path in [
            "/",
            "/groupsx",
            "/api/v1/cluster",
            "/api/v1/groupsx",
            "/topics/groups",
        ] {
            assert!(!is_group_path(path), "{path}");
        }
    }
}
