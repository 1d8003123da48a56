//! The figures behind the dashboard: hourly counts by outcome, latency
//! buckets, searches as understood, searches that found nobody and
//! messages not understood.
//!
//! The webhook counts into memory ([`Figures::observe`], one short lock, no
//! I/O); a background task ([`Figures::run`]) writes the hours that changed
//! to the store's `aggregates` tree every `dashboard.flush_every` and at
//! shutdown, and drops hours older than `dashboard.retention`. Each hour's
//! lists are capped at `dashboard.max_queries_per_hour` distinct entries.
//! No phone number is kept: searches are kept as the assistant understood
//! them, long digit runs masked, and texts only when
//! `dashboard.keep_unanswered_texts`, with every digit and e-mail address
//! masked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::config::DashboardConfig;
use crate::conversation::{Entities, Entry, Intent};
use crate::shutdown::Shutdown;
use crate::store::StorageError;
use crate::store::codec;
use crate::store::trees::HourTree;

/// Format version of a stored hour.
const HOUR_V1: u8 = 1;

const HOUR_MS: u64 = 3_600_000;

/// Upper bounds of the latency buckets, in microseconds; one more bucket
/// counts everything slower.
pub(crate) const LATENCY_BOUNDS_US: [u64; 12] = [
    1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000,
];

/// The key under which entries past the hourly cap are counted.
pub(crate) const OTHERS: &str = "(others)";
/// The key of not-understood messages whose text is not kept.
pub(crate) const NOT_KEPT: &str = "(text not kept)";

/// What one answered message asked, as the dashboard counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Asked {
    /// A search, as understood ("Doctor · Bengaluru"), and how many it found.
    Search { label: String, found: u32 },
    /// A message the assistant did not understand, as written.
    NotUnderstood { text: String },
}

impl Asked {
    /// What the exchange recorded in the session asked, if worth counting.
    pub(crate) fn of(entry: &Entry) -> Option<Asked> {
        match entry.intent {
            Intent::Search | Intent::Refine => Some(Asked::Search {
                label: label(&entry.entities),
                found: entry.result_count,
            }),
            Intent::Unknown => Some(Asked::NotUnderstood {
                text: entry.query.clone(),
            }),
            _ => None,
        }
    }
}

/// A search as understood, its parts joined with " · ": "Doctor ·
/// Cardiology · Bengaluru". Digit runs long enough to be a phone, and
/// e-mail addresses, are masked.
pub(crate) fn label(e: &Entities) -> String {
    let year = e.graduation_year.map(|y| format!("batch {y}"));
    let name = e.name.as_ref().map(|n| format!("named {n}"));
    let keywords = (!e.keywords.is_empty()).then(|| {
        let words: Vec<&str> = e
            .keywords
            .iter()
            .map(|k| {
                if k.contains('@') {
                    "(e-mail)"
                } else {
                    k.as_str()
                }
            })
            .collect();
        format!("“{}”", words.join(" "))
    });
    let parts: Vec<&str> = [
        &e.profession,
        &e.specialty,
        &e.designation,
        &e.degree,
        &e.branch,
        &e.skill,
        &e.service,
        &e.organization,
        &name,
        &keywords,
        &e.city,
        &e.area,
        &year,
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
    .filter(|p| !p.trim().is_empty())
    .collect();
    if parts.is_empty() {
        return "(any member)".to_owned();
    }
    mask_long_digit_runs(&parts.join(" · "))
}

/// Digit runs of five or more (a phone, or part of one) become `#####`.
fn mask_long_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 5 {
            out.push_str("#####");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// A not-understood text as kept: every digit `#`, every e-mail address
/// `(e-mail)`, spaces collapsed, at most 200 characters.
pub(crate) fn mask_text(text: &str) -> String {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|word| {
            if word.contains('@') && word.contains('.') {
                "(e-mail)".to_owned()
            } else {
                word.chars()
                    .map(|c| if c.is_numeric() { '#' } else { c })
                    .collect()
            }
        })
        .collect();
    words.join(" ").chars().take(200).collect()
}

/// One hour's counts, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hour {
    /// Requests by outcome (`answered`, `duplicate`, ..., `bad-signature`).
    pub outcomes: BTreeMap<String, u64>,
    /// Messages handled (every outcome but the refused requests).
    pub messages: u64,
    /// Requests by latency bucket ([`LATENCY_BOUNDS_US`], then slower).
    pub latency: Vec<u64>,
    pub searches: BTreeMap<String, u64>,
    pub no_results: BTreeMap<String, u64>,
    pub not_understood: BTreeMap<String, u64>,
}

impl Hour {
    /// Adds `other`'s counts (another instance's) to these.
    fn add(&mut self, other: &Hour) {
        add(&mut self.outcomes, &other.outcomes);
        self.messages += other.messages;
        if self.latency.len() < other.latency.len() {
            self.latency.resize(other.latency.len(), 0);
        }
        for (total, count) in self.latency.iter_mut().zip(&other.latency) {
            *total += count;
        }
        add(&mut self.searches, &other.searches);
        add(&mut self.no_results, &other.no_results);
        add(&mut self.not_understood, &other.not_understood);
    }

    /// Replaces the kept texts by their count under [`NOT_KEPT`]; whether
    /// anything changed.
    fn forget_texts(&mut self) -> bool {
        let total: u64 = self.not_understood.values().sum();
        if total == 0
            || (self.not_understood.len() == 1 && self.not_understood.contains_key(NOT_KEPT))
        {
            return false;
        }
        self.not_understood.clear();
        self.not_understood.insert(NOT_KEPT.to_owned(), total);
        true
    }

    fn bump(map: &mut BTreeMap<String, u64>, key: &str, cap: usize) {
        if let Some(count) = map.get_mut(key) {
            *count += 1;
        } else if map.len() < cap {
            map.insert(key.to_owned(), 1);
        } else {
            *map.entry(OTHERS.to_owned()).or_default() += 1;
        }
    }
}

#[derive(Default)]
struct Inner {
    /// What this instance counted.
    hours: BTreeMap<u64, Hour>,
    dirty: BTreeSet<u64>,
    /// With a shared store: the sum of what the other instances counted,
    /// as of the last flush.
    others: BTreeMap<u64, Hour>,
    /// How many times texts were forgotten anywhere, as this instance
    /// last saw it (a shared store's counter).
    texts_forgotten: Option<u64>,
}

/// The dashboard's counts: in memory, written to the store in the
/// background.
pub struct Figures {
    inner: Mutex<Inner>,
    tree: HourTree,
    clock: SharedClock,
    keep_texts: bool,
    cap: usize,
    retention_hours: u64,
    flush_every: Duration,
}

/// Sums over a span of hours.
#[derive(Debug, Clone, Default)]
pub(crate) struct Totals {
    pub outcomes: BTreeMap<String, u64>,
    pub messages: u64,
    pub latency: Vec<u64>,
    pub searches: BTreeMap<String, u64>,
    pub no_results: BTreeMap<String, u64>,
    pub not_understood: BTreeMap<String, u64>,
}

impl Totals {
    /// The latency under which `quantile` of requests answered, as the
    /// upper bound of its bucket, in milliseconds; `None` without requests.
    pub fn latency_ms(&self, quantile: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let wanted = (total as f64 * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in self.latency.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                let bound = LATENCY_BOUNDS_US
                    .get(i)
                    .copied()
                    .unwrap_or(LATENCY_BOUNDS_US[LATENCY_BOUNDS_US.len() - 1] * 2);
                return Some(bound as f64 / 1000.0);
            }
        }
        None
    }
}

fn add(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (key, count) in from {
        *into.entry(key.clone()).or_default() += count;
    }
}

impl Figures {
    /// Opens the figures kept in `db`, dropping hours past retention.
    pub(crate) fn open(
        tree: HourTree,
        config: &DashboardConfig,
        clock: SharedClock,
    ) -> Result<Figures, StorageError> {
        let mut hours = BTreeMap::new();
        for (key, bytes) in tree.own()? {
            match codec::decode::<Hour>("dashboard hour", HOUR_V1, &bytes) {
                Ok(hour) => {
                    hours.insert(key, hour);
                }
                // The figures are a convenience: a bad hour is dropped, not
                // a reason to refuse to start.
                Err(e) => tracing::warn!(hour = key, "dashboard figures of an hour dropped: {e}"),
            }
        }
        let texts_forgotten = tree.texts_forgotten()?;
        let figures = Figures {
            inner: Mutex::new(Inner {
                hours,
                dirty: BTreeSet::new(),
                others: BTreeMap::new(),
                texts_forgotten,
            }),
            tree,
            clock,
            keep_texts: config.keep_unanswered_texts,
            cap: config.max_queries_per_hour,
            retention_hours: (config.retention.as_secs() / 3600).max(1),
            flush_every: config.flush_every,
        };
        figures.prune()?;
        let now = figures.current_hour();
        figures.refresh_others(now.saturating_sub(figures.retention_hours), now)?;
        Ok(figures)
    }

    /// Reads what the other instances counted from hour `first` to `last`.
    fn refresh_others(&self, first: u64, last: u64) -> Result<(), StorageError> {
        let read = self.tree.others(first, last)?;
        let mut summed = BTreeMap::new();
        for (key, values) in read {
            let mut sum = Hour::default();
            for bytes in values {
                match codec::decode::<Hour>("dashboard hour", HOUR_V1, &bytes) {
                    Ok(hour) => sum.add(&hour),
                    Err(e) => tracing::warn!(
                        hour = key,
                        "another instance's figures of an hour dropped: {e}"
                    ),
                }
            }
            summed.insert(key, sum);
        }
        if let Ok(mut inner) = self.inner.lock() {
            for key in first..=last {
                match summed.remove(&key) {
                    Some(hour) => inner.others.insert(key, hour),
                    None => inner.others.remove(&key),
                };
            }
        }
        Ok(())
    }

    /// The hour (ms since the epoch / 1 h) it is now.
    pub(crate) fn current_hour(&self) -> u64 {
        self.clock.now_ms() / HOUR_MS
    }

    /// Counts one webhook request: its outcome, latency and what it asked.
    /// `handled` is false for requests refused before reading a message.
    pub(crate) fn observe(
        &self,
        outcome: &str,
        handled: bool,
        latency: Duration,
        asked: Option<&Asked>,
    ) {
        let hour_key = self.current_hour();
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| latency.as_micros() <= u128::from(b))
            .unwrap_or(LATENCY_BOUNDS_US.len());
        let masked = match asked {
            Some(Asked::NotUnderstood { text }) if self.keep_texts => Some(mask_text(text)),
            _ => None,
        };
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.dirty.insert(hour_key);
        let hour = inner.hours.entry(hour_key).or_default();
        Hour::bump(&mut hour.outcomes, outcome, usize::MAX);
        if handled {
            hour.messages += 1;
        }
        if hour.latency.len() <= LATENCY_BOUNDS_US.len() {
            hour.latency.resize(LATENCY_BOUNDS_US.len() + 1, 0);
        }
        hour.latency[bucket] += 1;
        match asked {
            Some(Asked::Search { label, found }) => {
                Hour::bump(&mut hour.searches, label, self.cap);
                if *found == 0 {
                    Hour::bump(&mut hour.no_results, label, self.cap);
                }
            }
            Some(Asked::NotUnderstood { .. }) => {
                let key = masked.as_deref().unwrap_or(NOT_KEPT);
                Hour::bump(&mut hour.not_understood, key, self.cap);
            }
            None => {}
        }
    }

    /// The counts of each of the `count` hours up to and including `last`.
    pub(crate) fn hourly(&self, last: u64, count: u64) -> Vec<(u64, u64)> {
        let Ok(inner) = self.inner.lock() else {
            return Vec::new();
        };
        let messages =
            |hours: &BTreeMap<u64, Hour>, h| hours.get(&h).map_or(0, |hour| hour.messages);
        (last.saturating_sub(count - 1)..=last)
            .map(|h| (h, messages(&inner.hours, h) + messages(&inner.others, h)))
            .collect()
    }

    /// Sums of the hours from `first` to `last`, inclusive.
    pub(crate) fn totals(&self, first: u64, last: u64) -> Totals {
        let mut totals = Totals {
            latency: vec![0; LATENCY_BOUNDS_US.len() + 1],
            ..Totals::default()
        };
        let Ok(inner) = self.inner.lock() else {
            return totals;
        };
        let own = inner.hours.range(first..=last);
        let others = inner.others.range(first..=last);
        for hour in own.chain(others).map(|(_, h)| h) {
            add(&mut totals.outcomes, &hour.outcomes);
            totals.messages += hour.messages;
            for (i, count) in hour.latency.iter().enumerate() {
                if let Some(total) = totals.latency.get_mut(i) {
                    *total += count;
                }
            }
            add(&mut totals.searches, &hour.searches);
            add(&mut totals.no_results, &hour.no_results);
            add(&mut totals.not_understood, &hour.not_understood);
        }
        totals
    }

    /// Forgets every kept not-understood text; their counts stay, under
    /// "(text not kept)".
    /// With a shared store, every instance's texts go: those stored are
    /// rewritten here, and each running instance forgets its own at its
    /// next flush. Blocking (it may speak to Redis).
    pub(crate) fn forget_texts(&self) -> Result<(), StorageError> {
        self.forget_own_texts();
        let now = self.current_hour();
        if let Ok(mut inner) = self.inner.lock() {
            for hour in inner.others.values_mut() {
                hour.forget_texts();
            }
        }
        let generation = self.tree.rewrite_others(
            now.saturating_sub(self.retention_hours),
            now,
            self.retention_hours,
            |bytes| {
                let mut hour = codec::decode::<Hour>("dashboard hour", HOUR_V1, bytes).ok()?;
                hour.forget_texts().then(|| codec::encode(HOUR_V1, &hour))
            },
        )?;
        if let (Some(generation), Ok(mut inner)) = (generation, self.inner.lock()) {
            inner.texts_forgotten = Some(generation);
        }
        Ok(())
    }

    fn forget_own_texts(&self) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let Inner { hours, dirty, .. } = &mut *inner;
        for (key, hour) in hours.iter_mut() {
            if hour.forget_texts() {
                dirty.insert(*key);
            }
        }
    }

    /// Writes the hours that changed, and drops those past retention.
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        // Texts forgotten on another instance since: forget ours too.
        let forgotten = self.tree.texts_forgotten()?;
        let seen = self.inner.lock().ok().and_then(|i| i.texts_forgotten);
        if forgotten.is_some() && forgotten != seen {
            self.forget_own_texts();
            if let Ok(mut inner) = self.inner.lock() {
                inner.texts_forgotten = forgotten;
            }
        }
        let values: Vec<(u64, Vec<u8>)> = {
            let Ok(mut inner) = self.inner.lock() else {
                return Ok(());
            };
            let dirty = std::mem::take(&mut inner.dirty);
            dirty
                .into_iter()
                .filter_map(|key| {
                    let hour = inner.hours.get(&key)?;
                    Some((key, codec::encode(HOUR_V1, hour)))
                })
                .collect()
        };
        if !values.is_empty() {
            self.tree.put_all(&values, self.retention_hours)?;
        }
        self.prune()?;
        // Others count in their current hour (and the last, at its turn).
        let now = self.current_hour();
        self.refresh_others(now.saturating_sub(1), now)?;
        self.tree.flush()
    }

    /// Drops the hours older than retention, in memory and in the store.
    fn prune(&self) -> Result<(), StorageError> {
        let oldest = self.current_hour().saturating_sub(self.retention_hours);
        if let Ok(mut inner) = self.inner.lock() {
            inner.hours = inner.hours.split_off(&oldest);
            inner.dirty = inner.dirty.split_off(&oldest);
            inner.others = inner.others.split_off(&oldest);
        }
        self.tree.remove_below(oldest)
    }

    /// Writes the figures every `dashboard.flush_every` until `shutdown`,
    /// then once more.
    pub async fn run(self: std::sync::Arc<Self>, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                () = shutdown.recv() => break,
                () = tokio::time::sleep(self.flush_every) => {}
            }
            self.flush_logged().await;
        }
        self.flush_logged().await;
    }

    async fn flush_logged(self: &std::sync::Arc<Self>) {
        let figures = std::sync::Arc::clone(self);
        match tokio::task::spawn_blocking(move || figures.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("dashboard figures not written: {e}"),
            Err(e) => tracing::error!("dashboard figures task failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn open(dir: &std::path::Path, clock: &std::sync::Arc<ManualClock>, cap: usize) -> Figures {
        // Through the data dir's own open, which waits out the lock a
        // database closed a moment ago may still hold.
        let db = crate::store::open(&crate::config::StorageConfig {
            data_dir: dir.to_owned(),
            ..Default::default()
        })
        .unwrap();
        let config = DashboardConfig {
            max_queries_per_hour: cap,
            ..DashboardConfig::default()
        };
        Figures::open(HourTree::open(&db).unwrap(), &config, clock.clone()).unwrap()
    }

    fn search(label: &str, found: u32) -> Asked {
        Asked::Search {
            label: label.to_owned(),
            found,
        }
    }

    #[test]
    fn each_hour_keeps_at_most_the_cap_of_distinct_searches() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::starting_now();
        let figures = open(dir.path(), &clock, 3);
        for i in 0..10 {
            let asked = search(&format!("Doctor · City{i}"), 0);
            figures.observe("answered", true, Duration::from_millis(3), Some(&asked));
        }
        let now = figures.current_hour();
        let totals = figures.totals(now, now);
        assert_eq!(totals.searches.len(), 4, "3 and (others)");
        assert_eq!(totals.searches[OTHERS], 7);
        assert_eq!(totals.no_results[OTHERS], 7);
        assert_eq!(totals.messages, 10);
        assert_eq!(totals.latency[2], 10, "in the 2-5 ms bucket");
    }

    /// Counting is a lock and a few map updates, with no I/O: far below
    /// what one webhook costs (a parse, a signature, a search, a session
    /// write). The bound is loose for a debug build on a busy machine.
    #[test]
    fn figures_written_are_read_back_and_dropped_past_retention() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::starting_now();
        {
            let figures = open(dir.path(), &clock, 10);
            figures.observe(
                "answered",
                true,
                Duration::from_millis(1),
                Some(&search("Doctor", 2)),
            );
            figures.observe("bad-signature", false, Duration::from_millis(1), None);
            figures.flush().unwrap();
        }
        let figures = open(dir.path(), &clock, 10);
        let now = figures.current_hour();
        let totals = figures.totals(now, now);
        assert_eq!(totals.messages, 1);
        assert_eq!(totals.outcomes["bad-signature"], 1);
        assert_eq!(totals.searches["Doctor"], 1);
        assert!(totals.no_results.is_empty());
        drop(figures);
        clock.advance(Duration::from_secs(91 * 24 * 3600));
        let figures = open(dir.path(), &clock, 10);
        assert_eq!(figures.totals(0, u64::MAX).messages, 0);
        drop(figures);
        let db = crate::store::open(&crate::config::StorageConfig {
            data_dir: dir.path().to_owned(),
            ..Default::default()
        })
        .unwrap();
        assert!(HourTree::open(&db).unwrap().own().unwrap().is_empty());
    }

    #[test]
    fn texts_lose_digits_and_addresses() {
        assert_eq!(
            mask_text("call  me on 98450 00001 or a.b@example.org"),
            "call me on ##### ##### or (e-mail)"
        );
    }

    #[test]
    fn labels_join_what_was_understood_and_hide_phones() {
        let e = Entities {
            profession: Some("Doctor".into()),
            city: Some("Bengaluru".into()),
            ..Entities::default()
        };
        assert_eq!(label(&e), "Doctor · Bengaluru");
        let e = Entities {
            keywords: vec!["9845000001".into(), "a@b.org".into()],
            graduation_year: Some(1995),
            ..Entities::default()
        };
        assert_eq!(label(&e), "“##### (e-mail)” · batch 1995");
    }

    #[test]
    fn quantiles_come_from_the_buckets() {
        let mut totals = Totals {
            latency: vec![0; LATENCY_BOUNDS_US.len() + 1],
            ..Totals::default()
        };
        totals.latency[0] = 98;
        totals.latency[4] = 2;
        assert_eq!(totals.latency_ms(0.5), Some(1.0));
        assert_eq!(totals.latency_ms(0.99), Some(25.0));
        assert_eq!(Totals::default().latency_ms(0.5), None);
    }
}
