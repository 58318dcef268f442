//! `/groups`: every consumer group with its state, members, lag in records and in time,
//! and status; `/groups/{group}`: its members and their partitions, lag per partition as a
//! table and as a chart over the last hour, its rebalance history, and the offset-reset
//! dialog (preview per partition how many records are reprocessed or skipped, execute,
//! undo the last reset).

use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use crate::api::extract::PathParams;
use crate::api::{groups, ApiContext};

use super::layout::{self, card, count, Section};

pub async fn list_page(ctx: ApiContext) -> Response {
    let list = match groups::list_groups(ctx.clone()).await {
        Ok(g) => g.0,
        Err(e) => return super::error_page(&ctx, Section::Groups, e),
    };
    let body = html! {
        h1 { "Consumer groups" }
        section.panel {
            @if list.groups.is_empty() {
                p.empty { "No groups yet: a group appears when a consumer joins it or commits an offset." }
            } @else {
                div.table-wrap {
                    table #groups {
                        thead { tr {
                            th { "Group" } th { "Status" } th { "State" } th { "Type" }
                            th.num { "Members" } th.num { "Lag" } th.num { "Lag (time)" }
                        } }
                        tbody {
                            @for g in &list.groups {
                                tr {
                                    td.wrap { a href={ "/groups/" (layout::urlencode(&g.group_id)) } { (g.group_id) } }
                                    td { (layout::status_badge(&g.status)) }
                                    td { (g.state) }
                                    td { (g.group_type) }
                                    td.num { (g.members) }
                                    td.num { (count(g.total_lag)) }
                                    td.num { (g.lag_seconds_max.map(layout::age).unwrap_or_else(|| "-".into())) }
                                }
                            }
                        }
                    }
                }
            }
            @if list.truncated > 0 {
                p.muted { (list.truncated) " more groups are not listed." }
            }
        }
    };
    layout::page(
        "Consumer groups",
        Section::Groups,
        &ctx.broker.cluster_id(),
        body,
    )
    .into_response()
}

pub async fn group_page(ctx: ApiContext, PathParams(group_id): PathParams<String>) -> Response {
    let group = match groups::describe_group(ctx.clone(), PathParams(group_id.clone())).await {
        Ok(g) => g.0,
        Err(e) => return super::error_page(&ctx, Section::Groups, e),
    };
    let history = match groups::group_rebalances(ctx.clone(), PathParams(group_id)).await {
        Ok(h) => h.0,
        Err(e) => return super::error_page(&ctx, Section::Groups, e),
    };
    let href = layout::urlencode(&group.group_id);
    let mut topics: Vec<&str> = group.offsets.iter().map(|p| p.topic.as_str()).collect();
    topics.dedup();
    let body = html! {
        h1 { "Group " (group.group_id) }
        div.cards {
            (card("Status", layout::status_badge(&group.status)))
            (card("State", &group.state))
            (card("Members", group.members.len()))
            (card("Lag", count(group.total_lag)))
            (card("Lag (time)", group.lag_seconds_max.map(layout::age).unwrap_or_else(|| "-".into())))
            (card("Protocol", if group.protocol.is_empty() { group.group_type.clone() } else { format!("{} · {}", group.group_type, group.protocol) }))
        }
        section.panel {
            h2 { "Members" }
            @if group.members.is_empty() {
                p.empty { "No members: the group is not consuming." }
            } @else {
                div.table-wrap {
                    table #members {
                        thead { tr { th { "Member" } th { "Client" } th { "Host" } th { "Partitions" } } }
                        tbody {
                            @for m in &group.members {
                                tr {
                                    td.wrap {
                                        code { (m.member_id) }
                                        @if let Some(i) = &m.instance_id { br; span.muted { "static " (i) } }
                                    }
                                    td { (m.client_id) }
                                    td { (m.host) }
                                    td.wrap {
                                        @for t in &m.assignment {
                                            div { (t.topic) ": " (partition_list(t.partitions.as_deref().unwrap_or(&[]))) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.panel {
            h2 { "Lag by partition" }
            div.table-wrap {
                table #lag {
                    thead { tr {
                        th { "Topic" } th.num { "Partition" } th.num { "Committed" } th.num { "High watermark" }
                        th.num { "Lag" } th.num { "Lag (time)" } th { "Member" }
                    } }
                    tbody {
                        @for p in &group.offsets {
                            tr {
                                td { (p.topic) }
                                td.num { (p.partition) }
                                td.num { (p.committed_offset.map(count).unwrap_or_else(|| "-".into())) }
                                td.num { (p.high_watermark.map(count).unwrap_or_else(|| "-".into())) }
                                td.num { (p.lag.map(count).unwrap_or_else(|| "-".into())) }
                                td.num { (p.lag_seconds.map(layout::age).unwrap_or_else(|| "-".into())) }
                                td.wrap { (p.member_id.as_deref().unwrap_or("-")) }
                            }
                        }
                    }
                }
            }
            h2 { "Lag, last hour" }
            div.chart data-lag-chart={ "/api/v1/groups/" (href) "/lag-history" } {}
        }
        (rebalances(&history))
        section.panel {
            h2 { "Offsets" }
            p { "Move the group's committed offsets: preview how many records each partition reprocesses or skips, then execute. The group must have no members." }
            div.actions {
                button #reset-offsets type="button" data-group=(group.group_id) disabled[!group.members.is_empty()] { "Reset offsets…" }
                " "
                button.secondary #reset-undo type="button" { "Undo the last reset" }
            }
            @if !group.members.is_empty() {
                p.muted { "Stop the group's consumers to reset its offsets." }
            }
            p.notice.error #undo-error hidden {}
            (reset_dialog(&topics))
        }
    };
    layout::page(
        &group.group_id,
        Section::Groups,
        &ctx.broker.cluster_id(),
        body,
    )
    .into_response()
}

/// The rebalance history, newest first: when, what triggered it, how long it took, who
/// joined, left or was removed and why, and whom the join barrier waited for.
fn rebalances(history: &groups::Rebalances) -> Markup {
    html! {
        section.panel {
            h2 { "Rebalances" }
            @if let Some(ms) = history.current_rebalance_ms {
                p.notice { "A rebalance is running, for " (layout::age(ms as f64 / 1_000.0)) " so far." }
            }
            @if history.rebalances.is_empty() {
                p.empty { "No rebalance since the broker started." }
            } @else {
                div.table-wrap {
                    table #rebalances {
                        thead { tr {
                            th { "Started (UTC)" } th { "Trigger" } th.num { "Took" } th { "Outcome" }
                            th.num { "Generation" } th { "Members" } th { "Waited for" }
                        } }
                        tbody {
                            @for r in history.rebalances.iter().rev() {
                                tr {
                                    td { (layout::utc(r.started_ms)) }
                                    td.wrap { (r.reason) }
                                    td.num { (millis(r.duration_ms)) }
                                    td { (r.outcome) }
                                    td.num { (r.generation_id.map(|g| g.to_string()).unwrap_or_else(|| "-".into())) }
                                    td.wrap {
                                        @for c in &r.member_changes {
                                            div { code { (c.member_id) } " " (c.change.replace('_', " ")) }
                                        }
                                        @if r.member_changes_dropped > 0 { div.muted { "and " (r.member_changes_dropped) " more" } }
                                    }
                                    td.wrap {
                                        @for m in &r.waited_for { div { code { (m) } } }
                                        @if r.waited_for_dropped > 0 { div.muted { "and " (r.waited_for_dropped) " more" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !history.counts.is_empty() {
                p.muted {
                    "Since the broker started: "
                    @for (i, (trigger, n)) in history.counts.iter().enumerate() {
                        @if i > 0 { ", " }
                        (n) " × " (trigger.replace('_', " "))
                    }
                    "."
                }
            }
        }
    }
}

/// A duration in milliseconds as a person reads it: `850 ms`, `3.2 s`, `4 min`.
fn millis(ms: i64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1_000.0)
    } else {
        layout::age(ms as f64 / 1_000.0)
    }
}

/// `0-3, 7, 9-10`.
fn partition_list(partitions: &[i32]) -> String {
    let mut sorted = partitions.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(", ")
}

fn reset_dialog(topics: &[&str]) -> Markup {
    html! {
        dialog #reset-dialog {
            h2 { "Reset offsets" }
            form.inline #reset-form {
                label { "Topic"
                    select name="topic" {
                        option value="" { "every topic the group committed" }
                        @for t in topics { option value=(t) { (t) } }
                    }
                }
                label { "To"
                    select name="to" {
                        option value="earliest" { "earliest" }
                        option value="latest" { "latest" }
                        option value="offset" { "offset" }
                        option value="shift" { "shift by" }
                        option value="datetime" { "time (UTC)" }
                    }
                }
                label #reset-value { "Offset or shift" input name="value" type="number" value="0"; }
                label #reset-datetime { "Time (UTC)" input name="datetime" type="datetime-local"; }
            }
            div.table-wrap {
                table {
                    thead { tr { th { "Topic" } th.num { "Partition" } th.num { "Committed" } th.num { "New" } th { "Effect" } } }
                    tbody #reset-plan {}
                }
            }
            p.notice.error #reset-error hidden {}
            div.actions {
                button.secondary #reset-cancel type="button" { "Cancel" }
                button.secondary #reset-preview type="button" { "Preview" }
                button.danger #reset-execute type="button" disabled { "Execute" }
            }
        }
    }
}
