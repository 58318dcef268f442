//! `/topics`: every topic with its size, and a form to create one; `/topics/{topic}`: its
//! partitions' offsets and sizes, its configs and where each comes from, adding partitions,
//! and deleting it after typing its name.

use axum::response::{IntoResponse, Response};
use maud::html;

use crate::api::extract::PathParams;
use crate::api::{topics, ApiContext};

use super::layout::{self, bytes, count, Section};

pub async fn list_page(ctx: ApiContext) -> Response {
    let list = match topics::list_topics(ctx.clone()).await {
        Ok(t) => t.0,
        Err(e) => return super::error_page(&ctx, Section::Topics, e),
    };
    let body = html! {
        h1 { "Topics" }
        section.panel {
            div.table-wrap {
                table #topics {
                    thead { tr { th { "Topic" } th.num { "Partitions" } th.num { "Records" } th.num { "Size" } } }
                    tbody {
                        @for t in &list.topics {
                            tr {
                                td.wrap {
                                    a href={ "/topics/" (layout::urlencode(&t.name)) } { (t.name) }
                                    @if t.internal { " " span.muted { "(internal)" } }
                                }
                                td.num { (t.partitions) }
                                td.num { (count(t.records)) }
                                td.num { (bytes(t.size_bytes)) }
                            }
                        }
                    }
                }
            }
            @if list.truncated > 0 {
                p.muted { (list.truncated) " more topics are not listed." }
            }
        }
        section.panel {
            h2 { "Create a topic" }
            form.inline #create-topic {
                label { "Name" input name="name" required pattern="[a-zA-Z0-9._-]+" maxlength="249"; }
                label { "Partitions" input name="partitions" type="number" min="1" value="1"; }
                button type="submit" { "Create" }
            }
            p.notice.error #create-topic-error hidden {}
        }
    };
    layout::page("Topics", Section::Topics, &ctx.broker.cluster_id(), body).into_response()
}

pub async fn topic_page(ctx: ApiContext, PathParams(name): PathParams<String>) -> Response {
    let topic = match topics::describe_topic(ctx.clone(), PathParams(name)).await {
        Ok(t) => t.0,
        Err(e) => return super::error_page(&ctx, Section::Topics, e),
    };
    let href = layout::urlencode(&topic.name);
    let body = html! {
        h1 { "Topic " (topic.name) }
        p.muted { "id " code { (topic.topic_id) } @if topic.internal { " · internal" } }
        section.panel {
            h2 { "Partitions" }
            div.table-wrap {
                table #partitions {
                    thead { tr {
                        th.num { "Partition" } th.num { "Log start" } th.num { "High watermark" }
                        th.num { "Last stable" } th.num { "Records" } th.num { "Size" } th.num { "Segments" } th { "" }
                    } }
                    tbody {
                        @for p in &topic.partitions {
                            tr {
                                td.num { (p.partition) }
                                td.num { (count(p.log_start_offset)) }
                                td.num { (count(p.high_watermark)) }
                                td.num { (count(p.last_stable_offset)) }
                                td.num { (count(p.high_watermark - p.log_start_offset)) }
                                td.num { (bytes(p.size_bytes)) }
                                td.num { (p.segments) }
                                td { a href={ "/topics/" (href) "/messages?partition=" (p.partition) "&offset=" (p.log_start_offset) } { "messages" } }
                            }
                        }
                    }
                }
            }
            @if !topic.internal {
                form.inline #add-partitions data-topic=(topic.name) {
                    label { "New partition count" input name="count" type="number" min=(topic.partitions.len() + 1) value=(topic.partitions.len() + 1); }
                    button.secondary type="submit" { "Add partitions" }
                }
                p.notice.error #add-partitions-error hidden {}
            }
        }
        section.panel {
            h2 { "Configs" }
            div.table-wrap {
                table #configs {
                    thead { tr { th { "Name" } th { "Value" } th { "Source" } } }
                    tbody {
                        @for c in &topic.configs {
                            tr {
                                td { (c.name) }
                                td.wrap { (c.value.as_deref().unwrap_or("-")) }
                                td.muted { (format!("{:?}", c.source).to_lowercase()) }
                            }
                        }
                    }
                }
            }
        }
        @if !topic.internal {
            section.panel {
                h2 { "Delete" }
                p { "Deleting a topic removes its records and every group's committed offsets on it. It cannot be undone." }
                button.danger #delete-topic type="button" data-topic=(topic.name) { "Delete topic…" }
                dialog #delete-topic-dialog {
                    h2 { "Delete topic " (topic.name) "?" }
                    p { "Type the topic's name to confirm." }
                    input #delete-topic-name autocomplete="off";
                    p.notice.error #delete-topic-error hidden {}
                    div.actions {
                        button.secondary #delete-topic-cancel type="button" { "Cancel" }
                        button.danger #delete-topic-confirm type="button" { "Delete" }
                    }
                }
            }
        }
    };
    layout::page(&topic.name, Section::Topics, &ctx.broker.cluster_id(), body).into_response()
}
