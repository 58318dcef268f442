//! `/topics/{topic}/messages`: the message browser. Pick a partition and an offset or a
//! time (UTC); each record shows its offset, time, key, value and headers. A value that is
//! a JSON object or array is pretty-printed, other text is shown as is, and bytes that are
//! not UTF-8 are shown as hex.

use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::NaiveDateTime;
use maud::{html, Markup};
use serde::Deserialize;

use crate::api::extract::{PathParams, QueryParams};
use crate::api::messages::{self, Encoding, ReadQuery};
use crate::api::{topics, ApiContext};
use crate::errors::HttpError;

use super::layout::{self, count, Section};

/// Records one page shows.
const RECORDS_PER_PAGE: usize = 50;
/// Bytes of a binary value shown as hex; the rest is summarised.
const HEX_SHOWN_BYTES_MAX: usize = 512;
/// The forms a time may be typed in the browser's field, read as UTC.
const TIME_FORMATS: [&str; 2] = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"];

#[derive(Debug, Deserialize)]
pub struct BrowseQuery {
    partition: Option<i32>,
    offset: Option<i64>,
    /// A time in UTC, as `datetime-local` fields send it (`2026-12-06T09:30`).
    time: Option<String>,
}

fn parse_time(text: &str) -> Result<i64, HttpError> {
    TIME_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| {
            HttpError::bad_request(
                "invalid_query",
                format!("'{text}' is not a time; give it as 2026-12-06T09:30 (UTC)."),
            )
        })
}

pub async fn page(
    ctx: ApiContext,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<BrowseQuery>,
) -> Response {
    let topic = match topics::describe_topic(ctx.clone(), PathParams(name)).await {
        Ok(t) => t.0,
        Err(e) => return super::error_page(&ctx, Section::Topics, e),
    };
    let partition = query.partition.unwrap_or(0);
    let time = query.time.as_deref().filter(|t| !t.is_empty());
    let timestamp_ms = match time.map(parse_time).transpose() {
        Ok(t) => t,
        Err(e) => return super::error_page(&ctx, Section::Topics, e),
    };
    let read = ReadQuery {
        offset: if timestamp_ms.is_some() {
            None
        } else {
            query.offset
        },
        timestamp_ms,
        max_records: Some(RECORDS_PER_PAGE),
        max_bytes: None,
    };
    let read = messages::read_messages(
        ctx.clone(),
        PathParams((topic.name.clone(), partition)),
        QueryParams(read),
    )
    .await;
    let read = match read {
        Ok(r) => r.0,
        Err(e) => return super::error_page(&ctx, Section::Topics, e),
    };
    let href = layout::urlencode(&topic.name);
    let body = html! {
        h1 { "Messages of " a href={ "/topics/" (href) } { (topic.name) } }
        section.panel {
            form.inline #browse method="get" {
                label { "Partition"
                    select name="partition" {
                        @for p in &topic.partitions {
                            option value=(p.partition) selected[p.partition == partition] { (p.partition) }
                        }
                    }
                }
                label { "From offset" input name="offset" type="number" min="0" value=[query.offset.filter(|_| time.is_none())]; }
                label { "or from time (UTC)" input name="time" type="datetime-local" value=[time]; }
                button type="submit" { "Show" }
            }
            p.muted {
                "Partition " (partition) " holds offsets " (count(read.log_start_offset)) " to "
                (count(read.high_watermark - 1)) "."
            }
        }
        section.panel {
            @if read.records.is_empty() {
                p.empty { "No records from there." }
            } @else {
                div.table-wrap {
                    table #messages {
                        thead { tr { th.num { "Offset" } th { "Time (UTC)" } th { "Key" } th { "Value" } th { "Headers" } } }
                        tbody {
                            @for r in &read.records {
                                tr {
                                    td.num { (r.offset) }
                                    td { (layout::utc(r.timestamp_ms)) }
                                    td.wrap { (field(r.key.as_deref(), r.key_encoding, Shape::Inline)) }
                                    td.wrap.value { (field(r.value.as_deref(), r.value_encoding, Shape::Block)) }
                                    td.wrap {
                                        @for h in &r.headers {
                                            div { (h.key) " = " (field(h.value.as_deref(), h.value_encoding, Shape::Inline)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if read.next_offset < read.high_watermark {
                    p { a #next-page href={ "/topics/" (href) "/messages?partition=" (partition) "&offset=" (read.next_offset) } { "Next records →" } }
                }
            }
        }
    };
    layout::page(
        &format!("Messages of {}", topic.name),
        Section::Topics,
        &ctx.broker.cluster_id(),
        body,
    )
    .into_response()
}

/// How a field is laid out: a value gets a block (JSON pretty-printed), a key or a header
/// value stays on its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Block,
    Inline,
}

/// A key, value or header value as the API gave it: null, text (a value's JSON
/// pretty-printed), or base64 shown as hex.
fn field(text: Option<&str>, encoding: Option<Encoding>, shape: Shape) -> Markup {
    match (text, encoding) {
        (None, _) | (_, None) => html! { span.muted { "null" } },
        (Some(t), Some(Encoding::Text)) => match (shape, layout::pretty_json(t)) {
            (Shape::Block, Some(pretty)) => html! { pre.json { (pretty) } },
            (Shape::Block, None) => html! { pre { (t) } },
            (Shape::Inline, _) => html! { code.value { (t) } },
        },
        (Some(t), Some(Encoding::Base64)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(t)
                .unwrap_or_default();
            let shown = &bytes[..bytes.len().min(HEX_SHOWN_BYTES_MAX)];
            html! {
                pre.hex { (layout::hex(shown)) }
                @if bytes.len() > shown.len() {
                    span.muted { "… " (bytes.len() - shown.len()) " more bytes" }
                }
            }
        }
    }
}
