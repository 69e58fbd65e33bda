//! A policy file checked against the functions of the program, all known at
//! link time: a key that names nothing is a warning with the closest key
//! that would, and so is a setting for an attribute the function does not
//! have. Keys that match never warn.

use std::path::Path;

use super::file::{Entry, PolicyFile};
use crate::policy::Kind;
use crate::registry::{LayerSite, functions};

/// Warns about each entry of `policy` (read from `path`) that would change
/// nothing.
pub(super) fn check(path: &Path, policy: &PolicyFile) {
    for (key, entry) in &policy.policies {
        let layers = layers_of(key);
        // A pipeline's stages: pipelines are named at run time, not known
        // at link time.
        let only_stages = entry.stages.is_some() && tables(entry).next().is_none();
        if layers.is_empty() && !only_stages {
            let suggestion = closest(key);
            tracing::warn!(
                file = %path.display(),
                key = key.as_str(),
                did_you_mean = suggestion.unwrap_or(""),
                "no annotated function, policy name or breaker name is called this; the entry changes nothing"
            );
            continue;
        }
        let adaptive =
            |layer: &LayerSite| matches!(layer, LayerSite::Timeout(site) if site.is_adaptive());
        if entry.adaptive.is_some() && !layers.iter().any(adaptive) {
            tracing::warn!(
                file = %path.display(),
                key = key.as_str(),
                setting = "adaptive",
                "no function by this key has an adaptive timeout (`#[timeout_async(…, adaptive(…))]`); it changes nothing"
            );
        }
        for (kind, table) in tables(entry) {
            if !layers.iter().any(|layer| layer.kind() == kind) {
                tracing::warn!(
                    file = %path.display(),
                    key = key.as_str(),
                    setting = table,
                    "no function by this key has the attribute this setting is for; it changes nothing"
                );
            }
        }
    }
}

/// Whether `key` names a module of some annotated function, and no
/// function or name.
pub(crate) fn is_module(key: &str) -> bool {
    functions().any(|function| {
        function
            .path()
            .strip_prefix(key)
            .is_some_and(|rest| rest.starts_with("::"))
    }) && !functions().any(|function| {
        function
            .layers()
            .iter()
            .any(|layer| layer.keys().contains(&Some(key)))
    })
}

/// The attributes a key reaches (see [`LayerSite::keys`]).
fn layers_of(key: &str) -> Vec<LayerSite> {
    let mut layers = Vec::new();
    for function in functions() {
        layers.extend(
            function
                .layers()
                .iter()
                .filter(|layer| layer.reached_by(function, key)),
        );
    }
    layers
}

/// The kinds an entry sets something for, with the setting's name.
fn tables(entry: &Entry) -> impl Iterator<Item = (Kind, &'static str)> {
    [
        entry.timeout.map(|_| (Kind::Timeout, "timeout")),
        entry.retry.map(|_| (Kind::Retry, "retry")),
        entry
            .circuit_breaker
            .map(|_| (Kind::Breaker, "circuit_breaker")),
        entry.device.map(|_| (Kind::Device, "device")),
        entry.monitor.map(|_| (Kind::Monitor, "monitor")),
        entry.rate_limit.map(|_| (Kind::RateLimit, "rate_limit")),
        entry.bulkhead.map(|_| (Kind::Bulkhead, "bulkhead")),
    ]
    .into_iter()
    .flatten()
}

/// The known key closest to `key`, if one is close enough to be a typo.
pub(crate) fn closest(key: &str) -> Option<&'static str> {
    functions()
        .flat_map(|function| function.layers())
        .flat_map(|layer| layer.keys().into_iter().flatten())
        .map(|known| (strsim::normalized_damerau_levenshtein(key, known), known))
        .filter(|&(similarity, _)| similarity >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}
