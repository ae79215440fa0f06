//! A distribution's gate: the checks that come before any behavior's (WAF rules, then geo
//! restriction), and the `CloudFront-Viewer-Country` / `CloudFront-Viewer-Address` fields
//! the edge writes for behaviors that forward them. Built per configuration generation and
//! worker, like the rest of [`super::Controls`].

use super::geo::{self, Database, GeoRt};
use super::waf::WafRt;
use config::geo::{forwards, VIEWER_ADDRESS, VIEWER_COUNTRY};
use std::sync::Arc;

/// Which `CloudFront-Viewer-*` fields a behavior forwards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forward {
    pub country: bool,
    pub address: bool,
}

pub struct Gate {
    pub waf: Option<WafRt>,
    pub geo: Option<GeoRt>,
    /// The country database, when the restriction or a behavior needs it.
    pub db: Option<Arc<Database>>,
    /// Per behavior (0 = the default).
    pub forward: Vec<Forward>,
}

impl Gate {
    /// The gate of a distribution (read from `cfg`'s top-level keys), or `None` when it has
    /// no WAF rules, no geo restriction and no behavior forwarding a viewer field.
    pub fn build(cfg: &config::Config) -> Result<Option<Gate>, String> {
        let forward: Vec<Forward> = std::iter::once(&cfg.default_cache_behavior)
            .chain(cfg.behaviors.iter())
            .map(|b| Forward {
                country: forwards(b, VIEWER_COUNTRY),
                address: forwards(b, VIEWER_ADDRESS),
            })
            .collect();
        let waf = WafRt::new(&cfg.waf)?;
        let restricted = cfg.geo_restriction.is_active();
        if waf.is_none() && !restricted && forward.iter().all(|f| *f == Forward::default()) {
            return Ok(None);
        }
        let db = if config::geo::needs_database(cfg) {
            let path = cfg.geo.database.as_deref().unwrap_or_default();
            Some(geo::database(path).ok_or_else(|| format!("geo database {path:?} is not open"))?)
        } else {
            None
        };
        let geo = restricted.then(|| GeoRt {
            restriction: cfg.geo_restriction.clone(),
            blocked: super::waf::geo_counter(&cfg.waf.distribution),
        });
        Ok(Some(Gate {
            waf,
            geo,
            db,
            forward,
        }))
    }
}
