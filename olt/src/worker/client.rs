//! The fleet API's HTTP client (blocking, ureq): what a controller sends ([`crate::fleet_api`])
//! and what the `fleet` command line asks. One client for both.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a request did not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The fleet did not answer (down, unreachable, too slow): try again later.
    #[error("the fleet at {url} did not answer: {why}")]
    Unreachable {
        /// The request's URL.
        url: String,
        /// What the transport said.
        why: String,
    },
    /// The fleet answered with an error.
    #[error("the fleet refused {what}: {status} {message}")]
    Refused {
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The fleet's one line.
        message: String,
    },
    /// The answer was not what the API says.
    #[error("the fleet's answer to {what} does not read: {why}")]
    BadAnswer {
        /// The request.
        what: String,
        /// Why.
        why: String,
    },
}

/// A fleet service's address and the token to show it.
#[derive(Clone, Debug)]
pub struct FleetClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// The most an image download may be (the lab's images are under 4 GiB; the fleet keeps them
/// in its database, so far smaller in practice).
const MAX_BODY: u64 = 1 << 30;

impl FleetClient {
    /// A client of the fleet at `base` (`http://HOST:PORT`), showing `token`.
    pub fn new(base: &str, token: &str, timeout: Duration) -> FleetClient {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        FleetClient {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            agent,
        }
    }

    /// The fleet's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn answer<T: DeserializeOwned>(
        &self,
        what: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        url: &str,
    ) -> Result<T, ClientError> {
        let mut resp = r.map_err(|e| ClientError::Unreachable {
            url: url.to_string(),
            why: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| ClientError::Unreachable {
                url: url.to_string(),
                why: e.to_string(),
            })?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or(text);
            return Err(ClientError::Refused {
                what: what.to_string(),
                status,
                message,
            });
        }
        serde_json::from_str(&text).map_err(|e| ClientError::BadAnswer {
            what: what.to_string(),
            why: e.to_string(),
        })
    }

    /// `GET path`, its JSON answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let r = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .call();
        self.answer(&format!("GET {path}"), r, &url)
    }

    /// `POST path` with `body` as JSON, its JSON answer.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let r = self
            .agent
            .post(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .send_json(body);
        self.answer(&format!("POST {path}"), r, &url)
    }

    /// `GET path`, its bytes.
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let url = self.url(path);
        let what = format!("GET {path}");
        let mut resp = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .map_err(|e| ClientError::Unreachable {
                url: url.clone(),
                why: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| ClientError::Unreachable {
                url: url.clone(),
                why: e.to_string(),
            })?;
        if !(200..300).contains(&status) {
            return Err(ClientError::Refused {
                what,
                status,
                message: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(bytes)
    }
}
