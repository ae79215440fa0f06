//! CloudFront's managed cache policies, by their published ids: TTLs and what goes into the
//! cache key (and so is forwarded to the origin). The normalized `Accept-Encoding` that some
//! of them add is not listed: slabfront keys compressed variants on its own.

/// One managed cache policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagedCachePolicy {
    pub id: &'static str,
    pub name: &'static str,
    pub min_ttl: u64,
    pub default_ttl: u64,
    pub max_ttl: u64,
    pub headers: Part,
    pub cookies: Part,
    pub query_strings: Part,
}

/// A cache key part as a managed policy sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    None,
    All,
    List(&'static [&'static str]),
}

const YEAR: u64 = 31_536_000;
const DAY: u64 = 86_400;

/// The managed cache policies (Amazon CloudFront Developer Guide, "Use managed cache
/// policies").
pub const MANAGED_CACHE_POLICIES: [ManagedCachePolicy; 7] = [
    ManagedCachePolicy {
        id: "658327ea-f89d-4fab-a63d-7e88639e58f6",
        name: "CachingOptimized",
        min_ttl: 1,
        default_ttl: DAY,
        max_ttl: YEAR,
        headers: Part::None,
        cookies: Part::None,
        query_strings: Part::None,
    },
    ManagedCachePolicy {
        id: "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
        name: "CachingDisabled",
        min_ttl: 0,
        default_ttl: 0,
        max_ttl: 0,
        headers: Part::None,
        cookies: Part::None,
        query_strings: Part::None,
    },
    ManagedCachePolicy {
        id: "83da9c7e-a1a3-4b14-b6f3-c4b9cad0f1d3",
        name: "UseOriginCacheControlHeaders",
        min_ttl: 0,
        default_ttl: 0,
        max_ttl: YEAR,
        headers: Part::List(&[
            "Host",
            "Origin",
            "X-HTTP-Method-Override",
            "X-HTTP-Method",
            "X-Method-Override",
        ]),
        cookies: Part::All,
        query_strings: Part::None,
    },
    ManagedCachePolicy {
        id: "4cc15a8a-d715-48a4-82b1-cc0ee9a9d1f6",
        name: "UseOriginCacheControlHeaders-QueryStrings",
        min_ttl: 0,
        default_ttl: 0,
        max_ttl: YEAR,
        headers: Part::List(&[
            "Host",
            "Origin",
            "X-HTTP-Method-Override",
            "X-HTTP-Method",
            "X-Method-Override",
        ]),
        cookies: Part::All,
        query_strings: Part::All,
    },
    ManagedCachePolicy {
        id: "b2884449-e4de-46a7-ac36-70bc7f1ddd6d",
        name: "CachingOptimizedForUncompressedObjects",
        min_ttl: 1,
        default_ttl: DAY,
        max_ttl: YEAR,
        headers: Part::None,
        cookies: Part::None,
        query_strings: Part::None,
    },
    ManagedCachePolicy {
        id: "08627262-05a9-4f76-9ded-b50ca2e3a84f",
        name: "Elemental-MediaPackage",
        min_ttl: 0,
        default_ttl: DAY,
        max_ttl: YEAR,
        headers: Part::List(&["Origin"]),
        cookies: Part::None,
        query_strings: Part::List(&["aws.manifestfilter", "start", "end", "m"]),
    },
    ManagedCachePolicy {
        id: "2e54312d-136d-493c-8eb9-b001f22f67d2",
        name: "Amplify",
        min_ttl: 2,
        default_ttl: 2,
        max_ttl: 600,
        headers: Part::List(&["Authorization", "CloudFront-Viewer-Country", "Host"]),
        cookies: Part::All,
        query_strings: Part::All,
    },
];

/// The managed cache policy with this id.
pub fn managed_cache_policy(id: &str) -> Option<&'static ManagedCachePolicy> {
    MANAGED_CACHE_POLICIES.iter().find(|p| p.id == id)
}

/// CloudFront's managed origin request policies, by id: their names, for the comment left
/// where one was attached (slabfront forwards exactly what is in the cache key).
pub const MANAGED_ORIGIN_REQUEST_POLICIES: [(&str, &str); 8] = [
    ("216adef6-5c7f-47e4-b989-5492eafa07d3", "AllViewer"),
    (
        "33f36d7e-f396-46d9-90e0-52428a34d9dc",
        "AllViewerAndCloudFrontHeaders-2022-06",
    ),
    (
        "b689b0a8-53d0-40ab-baf2-68738e2966ac",
        "AllViewerExceptHostHeader",
    ),
    ("59781a5b-3903-41f3-afcb-af62929ccde1", "CORS-CustomOrigin"),
    ("88a5eaf4-2fd4-4709-b370-b4c650ea3fcf", "CORS-S3Origin"),
    (
        "775133bc-15f2-49f9-abea-afb2e0bf67d2",
        "Elemental-MediaTailor-PersonalizedManifests",
    ),
    ("bf09a4a4-2ac3-4e1b-a64e-a2d37e4db6c4", "HostHeaderOnly"),
    ("acba4595-bd28-49b8-b9fe-13317c0390fa", "UserAgentRefererHeaders"),
];
