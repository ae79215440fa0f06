//! Origin groups (CloudFront's origin failover): a request for a group goes to its primary,
//! and to its secondary when the primary is down (see `health`), refuses the connection,
//! times out, resets, answers something unusable, or answers one of the group's
//! `failover_status_codes`, for GET, HEAD and OPTIONS only (other methods may have had an
//! effect on the primary). The answer says so: `Cache-Status` gets
//! `detail=failover-<reason>` (`primary-down`, `status-503`, `connect`, `timeout`, ...).
//! Requests collapsed onto a fill wait for the leader, whose fill is the one that failed
//! over: they get what it stored.
//!
//! When both members are down, nothing is sent: the caller serves a stale copy where
//! stale-if-error allows, else the error.

use super::health::{Admit, Health};
use super::upstream::{Head, OriginClient, UpConn, UpstreamError};
use super::ProxyWorker;
use crate::http::Method;
use std::sync::atomic::Ordering;

/// A group's secondary and the statuses that send requests to it.
pub struct GroupLink {
    /// The secondary's index in the worker's origins.
    pub secondary: usize,
    pub codes: Vec<u16>,
}

type Answer = Result<(UpConn, Head), UpstreamError>;

/// Whether an origin failure may be tried again elsewhere (a request refused before it was
/// sent is refused everywhere).
fn fails_over(e: &UpstreamError) -> bool {
    !matches!(e, UpstreamError::Refused(..))
}

/// Records how an answer reflects on an origin's health: errors and 5xx are failures.
fn report(h: &Health, r: &Answer) {
    h.report(match r {
        Ok((_, head)) => head.status < 500,
        Err(e) => !fails_over(e),
    });
}

/// One exchange with `primary`, or with its group's secondary as the module docs say.
/// `attempt` builds the request for the origin it is given and exchanges it. Returns the
/// origin that answered (its index in the worker's origins and its client) with its answer.
pub async fn exchange<'a, F>(
    px: &'a ProxyWorker,
    index: usize,
    primary: &'a OriginClient,
    method: Method,
    mut attempt: F,
) -> (usize, &'a OriginClient, Answer)
where
    F: AsyncFnMut(&'a OriginClient) -> Answer,
{
    let secondary = primary
        .group
        .as_ref()
        .and_then(|l| Some((l, px.origins.get(l.secondary)?.as_ref()?)))
        .filter(|_| matches!(method, Method::Get | Method::Head | Method::Options));
    let Some((link, secondary)) = secondary else {
        let r = attempt(primary).await;
        report(&primary.health, &r);
        return (index, primary, r);
    };
    let reason: String = match primary.health.admit() {
        Admit::Skip => "primary-down".into(),
        Admit::Go | Admit::Probe => {
            let r = attempt(primary).await;
            match &r {
                Ok((_, h)) if link.codes.contains(&h.status) => {
                    report(&primary.health, &r);
                    format!("status-{}", h.status)
                }
                Err(e) if fails_over(e) => {
                    report(&primary.health, &r);
                    e.kind().to_string()
                }
                _ => {
                    report(&primary.health, &r);
                    return (index, primary, r);
                }
            }
        }
    };
    if secondary.health.admit() == Admit::Skip {
        return (link.secondary, secondary, Err(UpstreamError::Down));
    }
    primary.health.failovers.fetch_add(1, Ordering::Relaxed);
    tracing::info!(origin = %primary.id, secondary = %secondary.id, reason = %reason, "failing over to the secondary origin");
    let mut r = attempt(secondary).await;
    report(&secondary.health, &r);
    if let Ok((_, h)) = &mut r {
        h.detail = Some(format!("failover-{reason}"));
    }
    (link.secondary, secondary, r)
}
