//! `/`: the cluster at a glance: counts, throughput in and out over the last hour, and the
//! consumer groups that need attention (any status but OK), worst first.

use axum::response::{IntoResponse, Response};
use maud::html;

use crate::api::{cluster, groups, topics, ApiContext};

use super::layout::{self, bytes, card, count, Section};

pub async fn page(ctx: ApiContext) -> Response {
    let cluster = match cluster::get_cluster(ctx.clone()).await {
        Ok(c) => c.0,
        Err(e) => return super::error_page(&ctx, Section::Overview, e),
    };
    let topics = match topics::list_topics(ctx.clone()).await {
        Ok(t) => t.0,
        Err(e) => return super::error_page(&ctx, Section::Overview, e),
    };
    let groups = match groups::list_groups(ctx.clone()).await {
        Ok(g) => g.0,
        Err(e) => return super::error_page(&ctx, Section::Overview, e),
    };
    let stored: u64 = topics.topics.iter().map(|t| t.size_bytes).sum();
    let mut attention: Vec<&groups::GroupSummary> =
        groups.groups.iter().filter(|g| g.status != "ok").collect();
    attention.sort_by(|a, b| b.total_lag.cmp(&a.total_lag));
    let body = html! {
        h1 { "Overview" }
        div.cards {
            (card("Topics", count(cluster.counts.topics as i64)))
            (card("Partitions", count(cluster.counts.partitions as i64)))
            (card("Consumer groups", count(cluster.counts.groups as i64)))
            (card("Need attention", count(attention.len() as i64)))
            (card("Stored", bytes(stored)))
        }
        section.panel {
            h2 { "Throughput, last hour" }
            div.chart data-throughput-chart="/api/v1/cluster/throughput" {}
        }
        section.panel {
            h2 { "Groups that need attention" }
            @if attention.is_empty() {
                p.empty { "Every group is OK." }
            } @else {
                div.table-wrap {
                    table #attention {
                        thead { tr { th { "Group" } th { "Status" } th { "State" } th.num { "Members" } th.num { "Lag" } th.num { "Lag (time)" } } }
                        tbody {
                            @for g in &attention {
                                tr {
                                    td { a href={ "/groups/" (layout::urlencode(&g.group_id)) } { (g.group_id) } }
                                    td { (layout::status_badge(&g.status)) }
                                    td { (g.state) }
                                    td.num { (g.members) }
                                    td.num { (count(g.total_lag)) }
                                    td.num { (g.lag_seconds_max.map(layout::age).unwrap_or_else(|| "-".into())) }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.muted {
            "weir " (cluster.version) " · node " (cluster.node_id) " · "
            a href="/api/v1/openapi.json" { "HTTP API" } " · "
            a href="/metrics" { "metrics" }
        }
    };
    layout::page("Overview", Section::Overview, &cluster.cluster_id, body).into_response()
}
