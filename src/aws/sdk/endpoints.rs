//! Where a client sends: the target's overrides, else the endpoint the SDK's own rules pick
//! for the region's partition, by one function for IAM and STS alike.
//!
//! Must not: send anything (the rules are evaluated in memory), or read the environment.

use crate::aws::Target;
use futures_util::FutureExt;
use std::fmt;

/// The URLs a client sends to: the overrides, else what the SDK's endpoint rules pick for
/// the region's partition (`iam.amazonaws.com`, `iam.cn-north-1.amazonaws.com.cn`,
/// `iam.us-gov.amazonaws.com`, `sts.REGION.amazonaws.com`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub iam: String,
    pub sts: String,
}

impl Endpoints {
    pub fn for_target(target: &Target) -> Endpoints {
        Endpoints {
            iam: target
                .iam_endpoint
                .clone()
                .unwrap_or_else(|| default_endpoint(Service::Iam, &target.region)),
            sts: target
                .sts_endpoint
                .clone()
                .unwrap_or_else(|| default_endpoint(Service::Sts, &target.region)),
        }
    }
}

/// The services whose endpoints follow the region's partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Iam,
    Sts,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Iam => "IAM",
            Service::Sts => "STS",
        })
    }
}

/// The endpoint the SDK picks for `service` in `region` with no override: IAM's one per
/// partition, STS's regional one (not the global `sts.amazonaws.com`).
pub fn default_endpoint(service: Service, region: &str) -> String {
    // Each SDK crate has its own `Params` and `DefaultResolver` types with the same methods.
    macro_rules! resolve {
        ($sdk:ident) => {{
            use $sdk::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
            Params::builder()
                .region(region)
                .use_fips(false)
                .use_dual_stack(false)
                .build()
                .ok()
                .and_then(|params| {
                    DefaultResolver::new()
                        .resolve_endpoint(&params)
                        .now_or_never()
                        .and_then(Result::ok)
                })
        }};
    }
    let resolved = match service {
        Service::Iam => resolve!(aws_sdk_iam),
        Service::Sts => resolve!(aws_sdk_sts),
    };
    resolved
        .map(|e| e.url().to_string())
        .unwrap_or_else(|| format!("the {service} endpoint of region {region}"))
}
