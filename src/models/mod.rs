//! Optional models over an OpenAI-compatible API: a chat model that reads
//! what the rules could not, and an embeddings server for semantic search.
//! Both are off unless configured (`[llm]`, `[embeddings]`), and neither can
//! cost a member an answer: every failure falls back to the rules.
//!
//! | module | owns |
//! | --- | --- |
//! | `chat` | the chat-completions request, its schema, reading the answer |
//! | `embed` | the embeddings request: models, prefixes, normalising |
//! | `semantic` | ranking members by cosine over one contiguous array |
//! | `breaker` | stopping calls to a failing server for a while |
//! | `privacy` | stripping phones and emails from what is sent |
//! | `counters` | the models' metrics, which `/metrics` reads |
//!
//! [`Models::understand`] is the webhook's understanding step: the rules,
//! then (only when they are unsure) the model within `llm.timeout`, its
//! object validated by the assistant. [`Models::closest`] answers a search
//! that found no one with the members closest in meaning, within
//! `embeddings.timeout`. [`Models::index_directory`] embeds the member
//! profiles of each directory load in the background, through the vector
//! cache, so only changed profiles are embedded again.

mod breaker;
mod chat;
mod counters;
mod embed;
pub(crate) mod privacy;
pub mod semantic;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::assistant::model_reading::profile_text;
use crate::assistant::{Answer, Assistant, PAGE_SIZE, Understanding};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::conversation::Session;
use crate::directory::{Directory, Member};
use crate::store::trees::VectorCache;
use breaker::Breaker;
use chat::{ChatClient, LastExchange, Prompt};
use embed::{EmbedClient, Mode};
use semantic::SemanticIndex;

pub use breaker::{FAILURES_TO_OPEN, OPEN_FOR};
pub(crate) use counters::ModelMetrics;

/// Why a model call did not give an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Timeout,
    Connect,
    Status(u16),
    NotTheObject,
}

impl Failure {
    fn from_reqwest(e: reqwest::Error) -> Failure {
        if e.is_timeout() {
            Failure::Timeout
        } else if e.is_connect() || e.is_request() {
            Failure::Connect
        } else {
            Failure::NotTheObject
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connect => "connection",
            Failure::Status(_) => "status",
            Failure::NotTheObject => "not-the-object",
        }
    }
}

/// Profiles per embeddings request while indexing.
const BATCH: usize = 32;
/// The most one indexing batch may take (a CPU model embeds ~10 a second).
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts at indexing a directory before giving up until the next load.
const INDEX_ATTEMPTS: u32 = 5;

struct ChatPart {
    client: ChatClient,
    timeout: Duration,
    breaker: Breaker,
}

struct EmbedPart {
    client: EmbedClient,
    timeout: Duration,
    floor: f32,
    breaker: Breaker,
    cache: VectorCache,
    /// The vectors of the directory they were computed for.
    ready: ArcSwapOption<Ready>,
    /// Bumped on every directory load; an older indexing task stops.
    generation: AtomicU64,
}

struct Ready {
    directory: Arc<Directory>,
    index: SemanticIndex,
}

/// The optional models and what they need; cheap to share.
pub struct Models {
    chat: Option<ChatPart>,
    embed: Option<EmbedPart>,
    metrics: ModelMetrics,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models")
            .field("chat", &self.chat.as_ref().map(|c| &c.client))
            .field("embeddings", &self.embed.as_ref().map(|e| &e.client))
            .finish()
    }
}

impl Models {
    /// The models `config` turns on; `cache` is needed only for embeddings.
    pub(crate) fn new(
        config: &Config,
        cache: Option<VectorCache>,
        metrics: ModelMetrics,
        clock: SharedClock,
    ) -> Models {
        let http = |timeout: Duration| {
            reqwest::Client::builder()
                .connect_timeout(timeout)
                .build()
                .unwrap_or_default()
        };
        // Without the Messages API, an answer must be ready by the reply
        // deadline: the models get parts of it.
        let (chat_timeout, embed_timeout) = match config.twilio.account_sid() {
            Some(_) => (config.llm.timeout, config.embeddings.timeout),
            None => {
                let deadline = config.twilio.reply_deadline;
                (
                    config.llm.timeout.min(deadline * 2 / 3),
                    config.embeddings.timeout.min(deadline / 3),
                )
            }
        };
        let chat = config.llm.base_url().map(|url| ChatPart {
            client: ChatClient::new(
                http(config.llm.timeout),
                url,
                &config.llm.model,
                config.llm.api_key.clone(),
            ),
            timeout: chat_timeout,
            breaker: Breaker::new("chat", clock.clone()),
        });
        let embed = match (config.embeddings.base_url(), cache) {
            (Some(url), Some(cache)) => Some(EmbedPart {
                client: EmbedClient::new(http(config.embeddings.timeout), url, &config.embeddings),
                timeout: embed_timeout,
                floor: config.embeddings.min_similarity,
                breaker: Breaker::new("embeddings", clock),
                cache,
                ready: ArcSwapOption::empty(),
                generation: AtomicU64::new(0),
            }),
            _ => None,
        };
        Models {
            chat,
            embed,
            metrics,
        }
    }

    /// Whether semantic search is configured (the vectors may not be ready).
    pub fn embeddings_on(&self) -> bool {
        self.embed.is_some()
    }

    /// The understanding step: the rules' reading, or (when they are unsure
    /// and a model is configured) the model's, validated against the
    /// directory. Bounded by `llm.timeout`.
    pub async fn understand(
        &self,
        assistant: &Assistant,
        text: &str,
        session: &Session,
        member: &Member,
    ) -> Understanding {
        let rules = assistant.understand(text, session, member);
        let Some(chat) = &self.chat else {
            return rules;
        };
        if !assistant.is_unsure(&rules) {
            return rules;
        }
        let metrics = &self.metrics;
        if !chat.breaker.allow() {
            metrics.fallback("chat");
            return rules;
        }
        let message = privacy::strip_contacts(text);
        let outline = assistant.outline();
        let last = session.history.last();
        let prompt = Prompt {
            message: &message,
            last_exchange: last.map(|e| LastExchange {
                intent: e.intent.as_str(),
                search: &e.entities,
                results_shown: e.result_ids.len(),
            }),
            directory: &outline,
        };
        let started = Instant::now();
        let result = tokio::time::timeout(chat.timeout, chat.client.read(&prompt))
            .await
            .unwrap_or(Err(Failure::Timeout));
        metrics.call("chat", started.elapsed());
        match result {
            Ok(reading) => {
                chat.breaker.success();
                assistant
                    .read_model(&reading, session, member)
                    .unwrap_or(rules)
            }
            Err(failure) => {
                chat.breaker.failure();
                metrics.failure("chat", failure.reason());
                metrics.fallback("chat");
                tracing::warn!(reason = failure.reason(), status = ?failure, "chat model failed; the rules answer");
                rules
            }
        }
    }

    /// The closest members by meaning, for a search the rules answered with
    /// no one (or a message they did not understand); `None` to answer as
    /// the rules do. Bounded by `embeddings.timeout`.
    pub async fn closest(
        &self,
        assistant: &Assistant,
        understanding: &Understanding,
        text: &str,
    ) -> Option<(Understanding, Answer)> {
        let embed = self.embed.as_ref()?;
        let ready = embed.ready.load_full()?;
        if !Arc::ptr_eq(&ready.directory, assistant.directory())
            || !assistant.wants_closest(understanding, text)
        {
            return None;
        }
        let metrics = &self.metrics;
        if !embed.breaker.allow() {
            metrics.fallback("embeddings");
            return None;
        }
        let input = embed
            .client
            .input(&privacy::strip_contacts(text), Mode::Query);
        let started = Instant::now();
        let result =
            tokio::time::timeout(embed.timeout, embed.client.embed(vec![input], Mode::Query))
                .await
                .unwrap_or(Err(Failure::Timeout));
        metrics.call("embeddings", started.elapsed());
        let query = match result {
            Ok(mut vectors) if vectors.len() == 1 => {
                embed.breaker.success();
                vectors.pop()?
            }
            Ok(_) | Err(_) => {
                let failure = result.err().unwrap_or(Failure::NotTheObject);
                embed.breaker.failure();
                metrics.failure("embeddings", failure.reason());
                metrics.fallback("embeddings");
                tracing::warn!(
                    reason = failure.reason(),
                    "embeddings server failed; the rules answer"
                );
                return None;
            }
        };
        let allowed = assistant.closest_allowed(&understanding.entities);
        let ranked = ready
            .index
            .rank(&query, allowed.as_deref(), embed.floor, PAGE_SIZE);
        if ranked.is_empty() {
            return None;
        }
        let positions: Vec<u32> = ranked.iter().map(|r| r.0).collect();
        Some(assistant.closest_answer(understanding, text, &positions))
    }

    /// Members whose profile vector is ready (0 until indexing is done).
    pub fn vectors_ready(&self) -> usize {
        self.embed
            .as_ref()
            .and_then(|e| e.ready.load_full())
            .map_or(0, |r| r.index.len())
    }

    /// The `limit` members closest in meaning to `text`, best first, with
    /// their similarity, whatever the rules make of it (no floor): for
    /// evaluating a model (`scripts/semantic-check.sh`). `None` when
    /// semantic search is off, not ready, or the server failed.
    pub async fn closest_members<'a>(
        &self,
        assistant: &'a Assistant,
        text: &str,
        limit: usize,
    ) -> Option<Vec<(&'a Member, f32)>> {
        let embed = self.embed.as_ref()?;
        let ready = embed.ready.load_full()?;
        let input = embed
            .client
            .input(&privacy::strip_contacts(text), Mode::Query);
        let query =
            tokio::time::timeout(embed.timeout, embed.client.embed(vec![input], Mode::Query))
                .await
                .ok()?
                .ok()?
                .pop()?;
        let members = assistant.directory().members();
        Some(
            ready
                .index
                .rank(&query, None, -1.0, limit)
                .into_iter()
                .filter_map(|(i, score)| members.get(i as usize).map(|m| (m, score)))
                .collect(),
        )
    }

    /// Embeds the active members of `assistant`'s directory in the
    /// background (cached vectors are reused); semantic search starts when
    /// they are all there. A newer load supersedes a running one.
    pub fn index_directory(self: &Arc<Self>, assistant: Arc<Assistant>) {
        let Some(embed) = &self.embed else {
            return;
        };
        let generation = embed.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let models = Arc::clone(self);
        tokio::spawn(async move {
            let mut pause = Duration::from_secs(2);
            for attempt in 1..=INDEX_ATTEMPTS {
                match models.index_once(&assistant, generation).await {
                    Ok(()) => return,
                    Err(Stop::Superseded) => return,
                    Err(Stop::Failed(failure)) => {
                        tracing::warn!(
                            attempt,
                            reason = failure.reason(),
                            "embedding member profiles failed; semantic search waits (rules answer)"
                        );
                        tokio::time::sleep(pause).await;
                        pause *= 4;
                    }
                }
            }
            tracing::error!("gave up embedding member profiles until the next directory load");
        });
    }

    async fn index_once(&self, assistant: &Assistant, generation: u64) -> Result<(), Stop> {
        let Some(embed) = &self.embed else {
            return Ok(());
        };
        let directory = assistant.directory();
        let model = embed.client.passage_model().to_owned();
        let members = directory.members();
        let mut rows: Vec<Option<Vec<f32>>> = vec![None; members.len()];
        // (position, input, cache key) of each active member's profile.
        let profiles: Vec<(usize, String, Vec<u8>)> = members
            .iter()
            .enumerate()
            .filter(|(_, member)| member.active)
            .map(|(i, member)| {
                let input = embed.client.input(&profile_text(member), Mode::Passage);
                let key = VectorCache::key(&model, &input);
                (i, input, key)
            })
            .collect();
        let keys: Vec<Vec<u8>> = profiles.iter().map(|(_, _, key)| key.clone()).collect();
        let cached = embed.cache.get_many(&keys).await;
        // Those not cached yet.
        let mut missing: Vec<(usize, String, Vec<u8>)> = Vec::new();
        for (profile, vector) in profiles.into_iter().zip(cached) {
            match vector {
                Some(vector) => rows[profile.0] = Some(vector),
                None => missing.push(profile),
            }
        }
        let total = missing.len();
        if total > 0 {
            tracing::info!(
                members = total,
                cached = members.len() - total,
                "embedding member profiles for semantic search"
            );
        }
        let metrics = &self.metrics;
        let mut done = 0;
        for batch in missing.chunks(BATCH) {
            if embed.generation.load(Ordering::SeqCst) != generation {
                return Err(Stop::Superseded);
            }
            let inputs: Vec<String> = batch.iter().map(|(_, input, _)| input.clone()).collect();
            let started = Instant::now();
            let vectors =
                tokio::time::timeout(BATCH_TIMEOUT, embed.client.embed(inputs, Mode::Passage))
                    .await
                    .unwrap_or(Err(Failure::Timeout));
            metrics.call("embeddings", started.elapsed());
            let vectors = vectors.inspect_err(|f| metrics.failure("embeddings", f.reason()))?;
            let computed: Vec<(Vec<u8>, Vec<f32>)> = batch
                .iter()
                .zip(vectors)
                .map(|((_, _, key), vector)| (key.clone(), vector))
                .collect();
            if let Err(e) = embed.cache.put_many(&computed).await {
                tracing::warn!("cannot cache profile vectors: {e}");
            }
            for ((i, _, _), (_, vector)) in batch.iter().zip(computed) {
                if let Some(row) = rows.get_mut(*i) {
                    *row = Some(vector);
                }
            }
            done += batch.len();
            metrics.profiles_embedded(batch.len());
            tracing::info!(done, of = total, "embedding member profiles");
        }
        if embed.generation.load(Ordering::SeqCst) != generation {
            return Err(Stop::Superseded);
        }
        let index = SemanticIndex::new(rows);
        metrics.vectors_ready(index.len());
        tracing::info!(
            members = index.len(),
            dim = index.dim(),
            "semantic search ready"
        );
        embed.ready.store(Some(Arc::new(Ready {
            directory: Arc::clone(directory),
            index,
        })));
        Ok(())
    }
}

/// Why indexing stopped early.
enum Stop {
    Superseded,
    Failed(Failure),
}

impl From<Failure> for Stop {
    fn from(failure: Failure) -> Stop {
        Stop::Failed(failure)
    }
}
