//! Geo restriction: a distribution's `geo_restriction` (CloudFront's `GeoRestriction`:
//! `restriction_type` and `locations`) and the process's `[geo] database`, the MaxMind-format
//! country database viewers' addresses are looked up in.

use crate::schema::{CacheBehavior, Config, KeyPart};
use serde::Deserialize;

/// `[geo]`: where viewers' countries come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geo {
    /// A MaxMind DB file with `country.iso_code` (GeoLite2-Country, GeoIP2-Country, DB-IP's
    /// country databases), memory-mapped; replace it by renaming a new file over it.
    #[serde(default)]
    pub database: Option<String>,
}

/// CloudFront's `GeoRestriction`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoRestriction {
    pub restriction_type: RestrictionType,
    /// ISO 3166-1 alpha-2 codes, upper case (`US`, `FR`, ...).
    #[serde(default)]
    pub locations: Vec<String>,
}

/// `whitelist`: only viewers in `locations` are served; `blacklist`: viewers there are not;
/// `none`: no restriction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestrictionType {
    #[default]
    None,
    Whitelist,
    Blacklist,
}

impl RestrictionType {
    /// CloudFront's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RestrictionType::None => "none",
            RestrictionType::Whitelist => "whitelist",
            RestrictionType::Blacklist => "blacklist",
        }
    }
}

impl GeoRestriction {
    /// Whether a restriction is in force.
    pub fn is_active(&self) -> bool {
        self.restriction_type != RestrictionType::None
    }

    /// Whether a viewer from `country` (`None`: not in the database) is refused.
    pub fn refuses(&self, country: Option<&str>) -> bool {
        let listed = country.is_some_and(|c| self.locations.iter().any(|l| l == c));
        match self.restriction_type {
            RestrictionType::None => false,
            RestrictionType::Whitelist => !listed,
            RestrictionType::Blacklist => listed,
        }
    }
}

/// The viewer headers a behavior may forward that only the edge can fill in.
pub const VIEWER_COUNTRY: &str = "cloudfront-viewer-country";
pub const VIEWER_ADDRESS: &str = "cloudfront-viewer-address";

/// Whether a behavior forwards (and keys on) this `CloudFront-Viewer-*` header.
pub fn forwards(b: &CacheBehavior, lname: &str) -> bool {
    match &b.headers {
        KeyPart::List(l) => l.iter().any(|h| h.eq_ignore_ascii_case(lname)),
        _ => false,
    }
}

/// ISO 3166-1 alpha-2, the codes CloudFront's geo restriction takes (officially assigned).
pub const COUNTRY_CODES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA",
    "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV",
    "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU",
    "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES",
    "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM",
    "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE",
    "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM",
    "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY",
    "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT",
    "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU",
    "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA",
    "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM",
    "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL",
    "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE",
    "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Whether the distribution needs the country database: a restriction, or a behavior that
/// forwards `CloudFront-Viewer-Country`.
pub fn needs_database(cfg: &Config) -> bool {
    cfg.geo_restriction.is_active()
        || std::iter::once(&cfg.default_cache_behavior)
            .chain(cfg.behaviors.iter())
            .any(|b| forwards(b, VIEWER_COUNTRY))
}

/// The checks of one distribution's geo restriction (read from the top-level keys).
pub(crate) fn check(cfg: &Config, bad: &mut impl FnMut(String, String)) {
    let g = &cfg.geo_restriction;
    for (i, l) in g.locations.iter().enumerate() {
        if !COUNTRY_CODES.contains(&l.as_str()) {
            let hint = if COUNTRY_CODES.contains(&l.to_ascii_uppercase().as_str()) {
                format!(" (write it in upper case: {:?})", l.to_ascii_uppercase())
            } else {
                String::new()
            };
            bad(
                format!("geo_restriction.locations[{i}]"),
                format!("{l:?} is not an ISO 3166-1 alpha-2 country code{hint}"),
            );
        } else if g.locations[..i].contains(l) {
            bad(
                format!("geo_restriction.locations[{i}]"),
                format!("{l:?} is listed twice"),
            );
        }
    }
    match g.restriction_type {
        RestrictionType::None if !g.locations.is_empty() => bad(
            "geo_restriction.locations".into(),
            "restriction_type \"none\" takes no locations".into(),
        ),
        RestrictionType::Whitelist | RestrictionType::Blacklist if g.locations.is_empty() => bad(
            "geo_restriction.locations".into(),
            format!(
                "restriction_type {:?} needs at least one location",
                g.restriction_type.as_str()
            ),
        ),
        _ => {}
    }
    if !needs_database(cfg) {
        return;
    }
    let at = if g.is_active() {
        "geo_restriction"
    } else {
        "default_cache_behavior.headers"
    };
    if cfg.geo.database.as_deref().is_none_or(str::is_empty) {
        bad(
            at.into(),
            "viewers' countries need a country database: [geo] database = \"….mmdb\" (a MaxMind DB \
             file)"
                .into(),
        );
    }
}

/// The database file, when a distribution needs it: it must be readable here.
pub(crate) fn check_database(cfg: &Config, machine: &impl Fn(String, String)) {
    let needed = needs_database(cfg)
        || cfg
            .distributions
            .iter()
            .any(|d| needs_database(&cfg.with_distribution(d)));
    if let Some(path) = cfg.geo.database.as_deref().filter(|p| needed && !p.is_empty()) {
        if let Err(e) = std::fs::File::open(path) {
            machine("geo.database".into(), format!("{path:?}: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitelist_blacklist_and_unknown_countries() {
        let g = |t, l: &[&str]| GeoRestriction {
            restriction_type: t,
            locations: l.iter().map(|s| s.to_string()).collect(),
        };
        let w = g(RestrictionType::Whitelist, &["US", "FR"]);
        assert!(!w.refuses(Some("US")) && w.refuses(Some("DE")) && w.refuses(None));
        let b = g(RestrictionType::Blacklist, &["US"]);
        assert!(b.refuses(Some("US")) && !b.refuses(Some("DE")) && !b.refuses(None));
        assert!(!g(RestrictionType::None, &[]).refuses(Some("US")));
    }

    #[test]
    fn the_code_list_is_sorted_and_unique() {
        assert!(COUNTRY_CODES.windows(2).all(|w| w[0] < w[1]));
    }
}
