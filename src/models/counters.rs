//! The models' own counters (calls, failures, latency, fallbacks, vectors
//! ready), which the models update and `GET /metrics` registers and reads.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabel {
    kind: &'static str,
    reason: &'static str,
}

/// Calls to the chat model (`kind="chat"`) and the embeddings server
/// (`kind="embeddings"`): how many, how they failed, how long they took,
/// how often the rules answered instead; and how far the member vectors are.
#[derive(Debug, Clone)]
pub(crate) struct ModelMetrics {
    calls: Family<KindLabel, Counter>,
    failures: Family<FailureLabel, Counter>,
    latency: Family<KindLabel, Histogram, fn() -> Histogram>,
    fallbacks: Family<KindLabel, Counter>,
    vectors_ready: Gauge,
    profiles_embedded: Counter,
}

impl ModelMetrics {
    pub(crate) fn new() -> ModelMetrics {
        fn latency_histogram() -> Histogram {
            // 1 ms to ~16 s.
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        }
        ModelMetrics {
            calls: Family::default(),
            failures: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            fallbacks: Family::default(),
            vectors_ready: Gauge::default(),
            profiles_embedded: Counter::default(),
        }
    }

    /// Adds these metrics to the `/metrics` registry; they stay shared with
    /// the clones the models count on.
    pub(crate) fn register(&self, registry: &mut Registry) {
        let metrics = self;
        registry.register(
            "roster_model_calls",
            "Calls to the chat model or the embeddings server",
            metrics.calls.clone(),
        );
        registry.register(
            "roster_model_failures",
            "Model calls that failed, by reason",
            metrics.failures.clone(),
        );
        registry.register(
            "roster_model_latency_seconds",
            "Latency of model calls",
            metrics.latency.clone(),
        );
        registry.register(
            "roster_model_fallbacks",
            "Messages the rules answered alone because a model failed or its breaker was open",
            metrics.fallbacks.clone(),
        );
        registry.register(
            "roster_embeddings_members",
            "Members whose profile vector is ready for semantic search",
            metrics.vectors_ready.clone(),
        );
        registry.register(
            "roster_embeddings_profiles_embedded",
            "Member profiles sent to the embeddings server (cached ones are not)",
            metrics.profiles_embedded.clone(),
        );
    }

    /// One call of `kind` and how long it took.
    pub(crate) fn call(&self, kind: &'static str, latency: Duration) {
        self.calls.get_or_create(&KindLabel { kind }).inc();
        self.latency
            .get_or_create(&KindLabel { kind })
            .observe(latency.as_secs_f64());
    }

    pub(crate) fn failure(&self, kind: &'static str, reason: &'static str) {
        self.failures
            .get_or_create(&FailureLabel { kind, reason })
            .inc();
    }

    pub(crate) fn fallback(&self, kind: &'static str) {
        self.fallbacks.get_or_create(&KindLabel { kind }).inc();
    }

    pub(crate) fn vectors_ready(&self, members: usize) {
        self.vectors_ready
            .set(i64::try_from(members).unwrap_or(i64::MAX));
    }

    pub(crate) fn profiles_embedded(&self, count: usize) {
        self.profiles_embedded.inc_by(count as u64);
    }
}
