//! Verifying webhook deliveries, offline or through PayPal's API (which is sent the body as
//! received, never re-serialised). Every check that needs no network comes first
//! ([`verify::precheck`]), so a delivery failing one costs no request.

use std::time::SystemTime;

use rustls_pki_types::CertificateDer;
use serde_json::value::RawValue;

use super::client::{PayPalMode, WebhookVerification};
use super::service::PayPal;
use super::verify::{self, TransmissionHeaders};

impl PayPal {
    /// Verifies a webhook delivery, offline or through PayPal's API as configured.
    pub async fn verify_webhook(
        &self,
        headers: &TransmissionHeaders,
        body: &[u8],
    ) -> Result<(), String> {
        self.verify_webhook_at(headers, body, SystemTime::now())
            .await
    }

    /// [`PayPal::verify_webhook`] with `now` as the receiver's clock (the transmission
    /// window and the certificate's validity); tests check recorded deliveries with it.
    pub async fn verify_webhook_at(
        &self,
        headers: &TransmissionHeaders,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), String> {
        let settings = &self.client().settings;
        let checked = verify::precheck(headers, &settings.webhook_id, &self.inner.policy, now)?;
        match settings.verification {
            WebhookVerification::Api => {
                // The body as received, only checked to be JSON: PayPal verifies these bytes.
                let event: &RawValue =
                    serde_json::from_slice(body).map_err(|_| "body is not JSON".to_string())?;
                match self.client().verify_webhook_signature(headers, event).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err("PayPal says the signature is not valid".into()),
                    Err(e) => Err(format!("verification API failed: {e}")),
                }
            }
            WebhookVerification::Offline => {
                self.load_simulator_ca().await;
                let pem = self
                    .client()
                    .certificate(&checked.cert_url)
                    .await
                    .map_err(|e| format!("certificate download failed: {e}"))?;
                let trust = self.inner.trust.lock().await.clone();
                verify::verify_signature(&checked, body, &pem, &trust, &self.inner.policy, now)
            }
        }
    }

    /// Outside production with the simulator, trusts the simulator's own CA (fetched once).
    async fn load_simulator_ca(&self) {
        if self.inner.policy.extra_url_prefixes.is_empty()
            || self.client().settings.mode != PayPalMode::Simulator
        {
            return;
        }
        let mut loaded = self.inner.simulator_ca_loaded.lock().await;
        if *loaded {
            return;
        }
        let Ok(url) = url::Url::parse(&format!(
            "{}/simulator/ca.pem",
            self.client().settings.api_base.trim_end_matches('/')
        )) else {
            return;
        };
        if let Ok(pem) = self.client().certificate(&url).await {
            if let Ok(certs) = verify::pem_certs(&pem) {
                let mut trust = self.inner.trust.lock().await;
                trust
                    .certs
                    .extend(certs.into_iter().map(CertificateDer::into_owned));
                *loaded = true;
            }
        }
    }
}
