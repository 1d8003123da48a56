//! The chat-completions client (`POST {base}/chat/completions`): the prompt,
//! the JSON schema of [`ModelReading`], and reading the answer leniently
//! (code fences, text around the object). A 400 that names
//! `response_format` downgrades the request once to `json_object`, then to
//! a plain prompt; the downgrade is remembered for later calls.

use std::sync::atomic::{AtomicU8, Ordering};

use serde::Serialize;
use serde_json::{Value, json};

use super::Failure;
use crate::assistant::model_reading::{ModelReading, Outline};
use crate::config::Secret;
use crate::conversation::Entities;

/// How the answer's shape is asked for, from the best to the plainest.
const JSON_SCHEMA: u8 = 0;
const JSON_OBJECT: u8 = 1;
const PLAIN: u8 = 2;

/// What is sent about one message: never a phone number or an email.
#[derive(Debug, Serialize)]
pub(crate) struct Prompt<'a> {
    /// The message, contacts stripped ([`super::privacy::strip_contacts`]).
    pub message: &'a str,
    /// The last exchange's understanding, for follow-ups.
    pub last_exchange: Option<LastExchange<'a>>,
    pub directory: &'a Outline,
}

#[derive(Debug, Serialize)]
pub(crate) struct LastExchange<'a> {
    pub intent: &'static str,
    pub search: &'a Entities,
    pub results_shown: usize,
}

pub(crate) struct ChatClient {
    http: reqwest::Client,
    url: String,
    model: String,
    api_key: Secret,
    format: AtomicU8,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("url", &self.url)
            .field("model", &self.model)
            .finish()
    }
}

const SYSTEM: &str = "You read one WhatsApp message sent to the assistant of a member directory \
and answer with one JSON object only, no other text. Fields: intent (one of search, name, more, \
contact, details, greeting, help, thanks, other); profession, specialty, designation, \
organization, city, area, name, graduation_year, branch, degree (a string or null); skills and \
keywords (arrays of strings); index (an integer or null, for \"the 2nd one\"). Use the \
directory's own values (given in `directory`) when one fits, and null when none does; put other \
words that say what the member needs in keywords. last_exchange is the previous search, for \
follow-ups such as \"what about Pune\" or \"the second one\".";

impl ChatClient {
    pub(crate) fn new(
        http: reqwest::Client,
        base_url: &str,
        model: &str,
        api_key: Secret,
    ) -> ChatClient {
        ChatClient {
            http,
            url: format!("{base_url}/chat/completions"),
            model: model.to_owned(),
            api_key,
            format: AtomicU8::new(JSON_SCHEMA),
        }
    }

    /// Asks the model to read `prompt`; the caller bounds the time.
    pub(crate) async fn read(&self, prompt: &Prompt<'_>) -> Result<ModelReading, Failure> {
        let user = serde_json::to_string(prompt).map_err(|_| Failure::NotTheObject)?;
        loop {
            let format = self.format.load(Ordering::Relaxed);
            let mut body = json!({
                "model": self.model,
                "temperature": 0,
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": user},
                ],
            });
            match format {
                JSON_SCHEMA => body["response_format"] = response_schema(),
                JSON_OBJECT => body["response_format"] = json!({"type": "json_object"}),
                _ => {}
            }
            let mut request = self.http.post(&self.url).json(&body);
            if let Some(key) = self.api_key.expose() {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.map_err(Failure::from_reqwest)?;
            let status = response.status();
            let text = response.text().await.map_err(Failure::from_reqwest)?;
            if status.as_u16() == 400 && text.contains("response_format") && format < PLAIN {
                // The server wants a plainer request; remember it.
                let _ = self.format.compare_exchange(
                    format,
                    format + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                tracing::info!(
                    "chat model refused response_format; asking more plainly from now on"
                );
                continue;
            }
            if !status.is_success() {
                return Err(Failure::Status(status.as_u16()));
            }
            let content = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| {
                    v.pointer("/choices/0/message/content")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .ok_or(Failure::NotTheObject)?;
            return object_in(&content).ok_or(Failure::NotTheObject);
        }
    }
}

/// The object in a model's answer: bare, in code fences, or with text
/// around it. It must name an intent.
pub(crate) fn object_in(content: &str) -> Option<ModelReading> {
    let start = content.find('{')?;
    let end = content.rfind('}')?;
    let candidate = content.get(start..=end)?;
    let value: Value = serde_json::from_str(candidate).ok()?;
    value.get("intent").and_then(Value::as_str)?;
    serde_json::from_value(value).ok()
}

/// `response_format` asking for exactly the [`ModelReading`] object.
fn response_schema() -> Value {
    let text = json!({"type": ["string", "null"]});
    let list = json!({"type": "array", "items": {"type": "string"}});
    let mut properties = serde_json::Map::new();
    properties.insert(
        "intent".to_owned(),
        json!({"type": "string", "enum": ["search", "name", "more", "contact", "details", "greeting", "help", "thanks", "other"]}),
    );
    for field in [
        "profession",
        "specialty",
        "designation",
        "organization",
        "city",
        "area",
        "name",
        "graduation_year",
        "branch",
        "degree",
    ] {
        properties.insert(field.to_owned(), text.clone());
    }
    properties.insert("skills".to_owned(), list.clone());
    properties.insert("keywords".to_owned(), list);
    properties.insert("index".to_owned(), json!({"type": ["integer", "null"]}));
    let required: Vec<Value> = properties.keys().map(|k| Value::from(k.as_str())).collect();
    json!({
        "type": "json_schema",
        "json_schema": {
            "name": "understanding",
            "strict": true,
            "schema": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_found_in_fences_and_prose() {
        let fenced = "```json\n{\"intent\": \"search\", \"profession\": \"Lawyer\"}\n```";
        assert_eq!(
            object_in(fenced).and_then(|r| r.profession),
            Some("Lawyer".to_owned())
        );
        let prose = "Sure! Here it is: {\"intent\": \"help\", \"index\": 2} Hope that helps.";
        assert_eq!(object_in(prose).map(|r| r.intent), Some("help".to_owned()));
        assert!(object_in("no json here").is_none());
        assert!(
            object_in("{\"profession\": \"Lawyer\"}").is_none(),
            "no intent"
        );
        assert!(object_in("{not json}").is_none());
    }

    #[test]
    fn the_schema_requires_every_field() {
        let schema = response_schema();
        let required = schema["json_schema"]["schema"]["required"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(required, 14);
    }
}
