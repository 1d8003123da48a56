//! `GET /metrics`: what an operator graphs and alerts on, in Prometheus text
//! format through `prometheus-client`.
//!
//! Counters and histograms that the request path updates live here; the
//! session store's own counters (live sessions, cache hit ratio, sweeper
//! removals, durable flushes) are read at scrape time by a collector, so the
//! hot path pays nothing for them.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::http::connections::{Pending, Tracker};
use crate::http::webhook::Outcome;
use crate::limits::Limits;
use crate::models::ModelMetrics;
use crate::store::Store;
use crate::store::health::FailureKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The registry and the metrics the request path updates.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<OutcomeLabel, Counter>,
    latency: Histogram,
    directory_members: Gauge,
    directory_loaded_at: Gauge,
    directory_reloads: Family<ResultLabel, Counter>,
}

impl Metrics {
    pub(crate) fn new(sessions: Arc<Store>, models: &ModelMetrics) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<OutcomeLabel, Counter>::default();
        // Every outcome appears, at zero until it happens.
        for outcome in Outcome::ALL {
            drop(requests.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            }));
        }
        registry.register(
            "roster_webhook_requests",
            "Webhook requests by outcome",
            requests.clone(),
        );
        // 50 µs to ~1.6 s.
        let latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "roster_webhook_latency_seconds",
            "End-to-end webhook latency",
            latency.clone(),
        );
        registry.register(
            "roster_durable_flush_seconds",
            "Latency of the group commit's disk flushes (strict durability)",
            sessions.flush_latency(),
        );
        let directory_members = Gauge::default();
        registry.register(
            "roster_directory_members",
            "Members in the loaded directory",
            directory_members.clone(),
        );
        let directory_loaded_at = Gauge::default();
        registry.register(
            "roster_directory_loaded_timestamp_seconds",
            "When the directory in use was loaded (Unix time)",
            directory_loaded_at.clone(),
        );
        let directory_reloads = Family::<ResultLabel, Counter>::default();
        for result in ["ok", "failed"] {
            drop(directory_reloads.get_or_create(&ResultLabel { result }));
        }
        registry.register(
            "roster_directory_reloads",
            "Directory reloads by result",
            directory_reloads.clone(),
        );
        registry.register_collector(Box::new(StoreCollector { sessions }));
        models.register(&mut registry);
        Metrics {
            registry,
            requests,
            latency,
            directory_members,
            directory_loaded_at,
            directory_reloads,
        }
    }

    /// Adds the connections, the requests in flight and the strangers
    /// remembered, read at scrape time.
    pub fn with_load(
        mut self,
        connections: Arc<Tracker>,
        pending: Arc<Pending>,
        limits: Arc<Limits>,
    ) -> Metrics {
        self.registry.register_collector(Box::new(LoadCollector {
            connections,
            pending,
            limits,
        }));
        self
    }

    /// Counts one webhook request and its latency.
    pub(crate) fn observe_webhook(&self, outcome: Outcome, latency: Duration) {
        self.requests
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
        self.latency.observe(latency.as_secs_f64());
    }

    /// Records a directory now in use.
    pub fn directory_loaded(&self, members: usize, at_unix_secs: u64) {
        self.directory_members
            .set(i64::try_from(members).unwrap_or(i64::MAX));
        self.directory_loaded_at
            .set(i64::try_from(at_unix_secs).unwrap_or(i64::MAX));
    }

    /// When the directory in use was loaded (Unix seconds).
    pub fn directory_loaded_at(&self) -> i64 {
        self.directory_loaded_at.get()
    }

    /// Counts a reload attempt.
    pub fn directory_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.directory_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!("metrics encoding failed: {e}");
        }
        text
    }
}

/// Reads the session store's counters at scrape time.
#[derive(Debug)]
struct StoreCollector {
    sessions: Arc<Store>,
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.sessions.stats();
        let gauges: [(&str, &str, i64); 3] = [
            (
                "roster_sessions_live",
                "Sessions stored (expired ones are removed by the sweeper)",
                i64::try_from(stats.stored_sessions).unwrap_or(i64::MAX),
            ),
            (
                "roster_session_cache_entries",
                "Sessions in the in-memory cache",
                i64::try_from(stats.cache_entries).unwrap_or(i64::MAX),
            ),
            (
                "roster_opted_out_phones",
                "Phones that sent STOP and not START since: nothing is sent to them",
                i64::try_from(self.sessions.opted_out_count()).unwrap_or(i64::MAX),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let ratio = ConstGauge::new(stats.cache_hit_rate);
        ratio.encode(encoder.encode_descriptor(
            "roster_session_cache_hit_ratio",
            "Session cache hits / reads",
            None,
            ratio.metric_type(),
        )?)?;
        let counters: [(&str, &str, u64); 4] = [
            (
                "roster_sweeper_removed_sessions",
                "Expired sessions removed by the sweeper",
                stats.swept_sessions,
            ),
            (
                "roster_sweeper_removed_messages",
                "Remembered replies removed by the sweeper",
                stats.swept_messages,
            ),
            ("roster_sweeps", "Sweeper runs", stats.sweeps),
            (
                "roster_durable_flushes",
                "Group-commit disk flushes",
                stats.flushes,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        self.encode_storage_health(&mut encoder)
    }
}

impl StoreCollector {
    /// Whether storage is out of service, its failures by kind, and the
    /// writes refused since.
    fn encode_storage_health(
        &self,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let health = self.sessions.health();
        let failed = ConstGauge::new(i64::from(health.is_failed()));
        failed.encode(encoder.encode_descriptor(
            "roster_storage_failed",
            "1 once a write or flush failed or the data dir was lost: writes get 503 until the store is reopened",
            None,
            failed.metric_type(),
        )?)?;
        let mut failures = encoder.encode_descriptor(
            "roster_storage_failures",
            "Failed storage operations, by kind (write, flush, data-dir)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for kind in FailureKind::ALL {
            let counter = ConstCounter::new(health.failures(kind));
            counter.encode(failures.encode_family(&[("kind", kind.as_str())])?)?;
        }
        let refused = ConstCounter::new(health.refused());
        refused.encode(encoder.encode_descriptor(
            "roster_storage_refused_writes",
            "Writes (and redeliveries of exchanges never confirmed durable) refused with 503 because storage was out of service",
            None,
            refused.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Reads the connection tracker, overload shedding and the strangers'
/// memory at scrape time.
#[derive(Debug)]
struct LoadCollector {
    connections: Arc<Tracker>,
    pending: Arc<Pending>,
    limits: Arc<Limits>,
}

impl Collector for LoadCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = self.connections.stats();
        let int = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let gauges: [(&str, &str, i64); 5] = [
            (
                "roster_connections_open",
                "Open HTTP connections",
                int(c.open),
            ),
            (
                "roster_connections_idle",
                "Open connections waiting for a request",
                int(c.idle),
            ),
            (
                "roster_connections_max",
                "The cap on open connections (server.max_connections, after the open-file limit)",
                int(c.max),
            ),
            (
                "roster_requests_in_flight",
                "Requests being handled (server.max_pending sheds beyond)",
                int(self.pending.in_flight()),
            ),
            (
                "roster_strangers_remembered",
                "Strangers whose hourly refusal is remembered (at most limits.max_strangers)",
                int(self.limits.strangers.len()),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let counters: [(&str, &str, u64); 4] = [
            (
                "roster_connections_evicted",
                "Idle connections and slow headers closed to make room at the cap",
                c.evicted,
            ),
            (
                "roster_connections_refused",
                "New connections refused with 503: every open one was busy or its header only just began",
                c.refused,
            ),
            (
                "roster_connections_timed_out",
                "Connections closed by server.header_timeout or server.idle_timeout",
                c.timed_out,
            ),
            (
                "roster_requests_shed",
                "Requests answered 503 because server.max_pending were in flight",
                self.pending.shed(),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
