//! The simulator's REST API: the subset of PayPal's OAuth, Orders v2, Payments v2 and
//! Webhooks v1 the app uses, with PayPal's paths, shapes, error bodies and idempotency by
//! `PayPal-Request-Id`, plus the steerable failures of [`Control`].

use super::*;

/// PayPal-style error body.
pub(crate) fn error(
    status: u16,
    name: &str,
    issue: Option<&str>,
    message: &str,
) -> (Status, Json<Value>) {
    let mut body = json!({
        "name": name,
        "message": message,
        "debug_id": ticketing_core::tokens::crockford_code(13).to_lowercase(),
    });
    if let Some(issue) = issue {
        body["details"] = json!([{ "issue": issue, "description": message }]);
    }
    (Status::new(status), Json(body))
}

/// Request guard for the simulator's API: bearer token, PayPal-Request-Id, and the
/// steerable failures (500s and delays).
pub struct Api {
    request_id: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Api {
    type Error = (Status, Json<Value>);

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let sim = req.rocket().state::<Arc<Sim>>().expect("Sim state");
        let auth = req.headers().get_one("Authorization").unwrap_or("");
        if !auth.starts_with("Bearer ") {
            let e = error(401, "AUTHENTICATION_FAILURE", None, "Authentication failed due to invalid authentication credentials or a missing Authorization header.");
            return Outcome::Error((Status::Unauthorized, e));
        }
        let delay = {
            let mut c = sim.control.lock().unwrap();
            match c.delay_next {
                0 => c.delay_ms,
                1 => {
                    c.delay_next = 0;
                    let d = c.delay_ms;
                    c.delay_ms = 0;
                    d
                }
                _ => {
                    c.delay_next -= 1;
                    c.delay_ms
                }
            }
        };
        if delay > 0 {
            rocket::tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let fail = {
            let mut c = sim.control.lock().unwrap();
            if c.fail_next > 0 {
                c.fail_next -= 1;
                true
            } else {
                false
            }
        };
        if fail {
            let e = error(
                500,
                "INTERNAL_SERVER_ERROR",
                None,
                "An internal server error occurred.",
            );
            return Outcome::Error((Status::InternalServerError, e));
        }
        Outcome::Success(Api {
            request_id: req
                .headers()
                .get_one("PayPal-Request-Id")
                .map(str::to_string),
        })
    }
}

type Reply = (Status, Json<Value>);

/// Runs `f` once per request id; a repeated id gets the first answer again.
/// With `lose_next` set, the answer (first or repeated) is replaced by a 500 after the work
/// is done.
pub(crate) fn idempotent(sim: &Sim, scope: &str, api: &Api, f: impl FnOnce() -> Reply) -> Reply {
    let key = api.request_id.as_ref().map(|id| format!("{scope}:{id}"));
    let (status, body) = {
        // Held while the work is done, so two requests with one id never both do it.
        let mut replies = sim.replies.lock().unwrap();
        match key.as_ref().and_then(|key| replies.get(key).cloned()) {
            Some((status, body)) => (Status::new(status), body),
            None => {
                let (status, Json(body)) = f();
                if let Some(key) = key {
                    replies.insert(key, (status.code, body.clone()));
                }
                (status, body)
            }
        }
    };
    let lose = {
        let mut c = sim.control.lock().unwrap();
        let lose = c.lose_next > 0;
        c.lose_next = c.lose_next.saturating_sub(1);
        lose
    };
    if lose {
        return error(
            500,
            "INTERNAL_SERVER_ERROR",
            None,
            "An internal server error occurred.",
        );
    }
    (status, Json(body))
}

#[post("/v1/oauth2/token")]
pub(crate) fn token(req_auth: BasicAuth) -> Reply {
    let _ = req_auth;
    (
        Status::Ok,
        Json(json!({
            "scope": "https://uri.paypal.com/services/payments/payment",
            "access_token": format!("A21AA{}", ticketing_core::tokens::url_token(24)),
            "token_type": "Bearer",
            "app_id": "APP-SIMULATOR",
            "expires_in": 32400,
            "nonce": ticketing_core::tokens::url_token(12),
        })),
    )
}

pub struct BasicAuth;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BasicAuth {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match req.headers().get_one("Authorization") {
            Some(a) if a.starts_with("Basic ") => Outcome::Success(BasicAuth),
            _ => Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

#[post("/v2/checkout/orders", data = "<body>")]
pub(crate) fn create_order(sim: &State<Arc<Sim>>, api: Api, body: Json<Value>) -> Reply {
    let body = body.into_inner();
    idempotent(sim, "create", &api, || {
        let unit = &body["purchase_units"][0];
        let amount = &unit["amount"];
        let valid = body["intent"] == "CAPTURE"
            && amount["currency_code"]
                .as_str()
                .is_some_and(|c| c.len() == 3)
            && amount["value"].as_str().is_some_and(|v| !v.is_empty());
        if !valid {
            return error(422, "UNPROCESSABLE_ENTITY", Some("INVALID_PARAMETER_VALUE"), "The requested action could not be performed, semantically incorrect, or failed business validation.");
        }
        let ctx = &body["payment_source"]["paypal"]["experience_context"];
        let order = SimOrder {
            id: sim.next_id(""),
            status: "PAYER_ACTION_REQUIRED".into(),
            return_url: ctx["return_url"].as_str().unwrap_or_default().to_string(),
            cancel_url: ctx["cancel_url"].as_str().unwrap_or_default().to_string(),
            body: body.clone(),
            decline_funding: false,
            captures: Vec::new(),
        };
        let reply = sim.order_json(&order);
        sim.orders.lock().unwrap().insert(order.id.clone(), order);
        (Status::Ok, Json(reply))
    })
}

#[get("/v2/checkout/orders/<id>")]
pub(crate) fn get_order(sim: &State<Arc<Sim>>, _api: Api, id: &str) -> Reply {
    match sim.orders.lock().unwrap().get(id) {
        Some(o) => (Status::Ok, Json(sim.order_json(o))),
        None => error(
            404,
            "RESOURCE_NOT_FOUND",
            Some("INVALID_RESOURCE_ID"),
            "Specified resource ID does not exist.",
        ),
    }
}

#[post("/v2/checkout/orders/<id>/capture")]
pub(crate) fn capture(sim: &State<Arc<Sim>>, api: Api, id: &str) -> Reply {
    let sim_arc: Arc<Sim> = (*sim).clone();
    idempotent(sim, "capture", &api, || {
        let mut orders = sim.orders.lock().unwrap();
        let Some(order) = orders.get_mut(id) else {
            return error(
                404,
                "RESOURCE_NOT_FOUND",
                Some("INVALID_RESOURCE_ID"),
                "Specified resource ID does not exist.",
            );
        };
        if order.captures.iter().any(|c| c["status"] != "DECLINED") {
            return error(422, "UNPROCESSABLE_ENTITY", Some("ORDER_ALREADY_CAPTURED"), "Order already captured. If intent is CAPTURE only one capture per order is allowed.");
        }
        if order.status != "APPROVED" {
            return error(
                422,
                "UNPROCESSABLE_ENTITY",
                Some("ORDER_NOT_APPROVED"),
                "Payer has not yet approved the Order for payment.",
            );
        }
        let control = sim.control();
        let outcome = if order.decline_funding {
            "INSTRUMENT_DECLINED".to_string()
        } else {
            control.capture_outcome.clone()
        };
        if outcome == "INSTRUMENT_DECLINED" {
            order.decline_funding = false;
            order.status = "PAYER_ACTION_REQUIRED".into();
            return error(422, "UNPROCESSABLE_ENTITY", Some("INSTRUMENT_DECLINED"), "The instrument presented was either declined by the processor or bank, or it can't be used for this payment.");
        }
        let unit = &order.body["purchase_units"][0];
        let capture = json!({
            "id": sim.next_id("CAP"),
            "status": outcome,
            "amount": unit["amount"],
            "final_capture": true,
            "custom_id": unit["custom_id"],
            "invoice_id": unit["invoice_id"],
            "supplementary_data": { "related_ids": { "order_id": order.id } },
            "links": [
                { "href": format!("{}/v2/payments/captures/x", sim.base), "rel": "self", "method": "GET" },
                { "href": format!("{}/v2/checkout/orders/{}", sim.base, order.id), "rel": "up", "method": "GET" },
            ],
        });
        order.captures.push(capture.clone());
        order.status = if outcome == "DECLINED" {
            "PAYER_ACTION_REQUIRED".into()
        } else {
            "COMPLETED".into()
        };
        let reply = sim.order_json(order);
        drop(orders);
        let event = match outcome.as_str() {
            "COMPLETED" => "PAYMENT.CAPTURE.COMPLETED",
            "PENDING" => "PAYMENT.CAPTURE.PENDING",
            _ => "PAYMENT.CAPTURE.DECLINED",
        };
        sim_arc.webhook(event, "capture", capture);
        (Status::Created, Json(reply))
    })
}

pub(crate) fn find_capture<'a>(
    orders: &'a mut HashMap<String, SimOrder>,
    capture_id: &str,
) -> Option<(&'a mut SimOrder, usize)> {
    orders.values_mut().find_map(|o| {
        let i = o.captures.iter().position(|c| c["id"] == capture_id)?;
        Some((o, i))
    })
}

#[post("/v2/payments/captures/<id>/refund", data = "<body>")]
pub(crate) fn refund(
    sim: &State<Arc<Sim>>,
    api: Api,
    id: &str,
    body: Option<Json<Value>>,
) -> Reply {
    let sim_arc: Arc<Sim> = (*sim).clone();
    let body = body.map(|b| b.into_inner()).unwrap_or(Value::Null);
    idempotent(sim, "refund", &api, || {
        let mut orders = sim.orders.lock().unwrap();
        let Some((order, i)) = find_capture(&mut orders, id) else {
            return error(
                404,
                "RESOURCE_NOT_FOUND",
                Some("INVALID_RESOURCE_ID"),
                "Specified resource ID does not exist.",
            );
        };
        let capture = &mut order.captures[i];
        if !matches!(
            capture["status"].as_str(),
            Some("COMPLETED" | "PARTIALLY_REFUNDED")
        ) {
            return error(
                422,
                "UNPROCESSABLE_ENTITY",
                Some("CAPTURE_FULLY_REFUNDED"),
                "The capture has already been fully refunded.",
            );
        }
        let to_minor = |v: &Value| -> i64 {
            let s = v.as_str().unwrap_or("0");
            let (a, b) = s.split_once('.').unwrap_or((s, ""));
            a.parse::<i64>().unwrap_or(0) * 10i64.pow(b.len() as u32)
                + b.parse::<i64>().unwrap_or(0)
        };
        let total = to_minor(&capture["amount"]["value"]);
        let done = capture["refunded_minor"].as_i64().unwrap_or(0);
        let amount = if body["amount"].is_object() {
            to_minor(&body["amount"]["value"])
        } else {
            total - done
        };
        if amount <= 0 || amount + done > total {
            return error(422, "UNPROCESSABLE_ENTITY", Some("REFUND_AMOUNT_EXCEEDED"), "The refund amount must be less than or equal to the capture amount that has not yet been refunded.");
        }
        capture["refunded_minor"] = json!(done + amount);
        capture["status"] = json!(if done + amount == total {
            "REFUNDED"
        } else {
            "PARTIALLY_REFUNDED"
        });
        let refund = json!({
            "id": sim.next_id("REF"),
            "status": "COMPLETED",
            "amount": body["amount"].clone(),
            "invoice_id": body["invoice_id"].clone(),
            "links": [
                { "href": format!("{}/v2/payments/captures/{}", sim.base, id), "rel": "up", "method": "GET" },
            ],
        });
        drop(orders);
        sim_arc.webhook("PAYMENT.CAPTURE.REFUNDED", "refund", refund.clone());
        (Status::Created, Json(refund))
    })
}

/// Verifies like PayPal: the signed CRC-32 is of `webhook_event`'s bytes exactly as
/// received, never of a re-serialisation. Test:
/// `the_simulator_verifies_the_webhook_event_as_received` (tests/it/paypal_verify.rs).
#[post("/v1/notifications/verify-webhook-signature", data = "<body>")]
pub(crate) async fn verify_signature(
    sim: &State<Arc<Sim>>,
    _api: Api,
    body: rocket::Data<'_>,
) -> Reply {
    /// The request, `webhook_event` as the raw text sent.
    #[derive(Deserialize)]
    struct VerifyRequest<'r> {
        #[serde(default)]
        auth_algo: String,
        #[serde(default)]
        cert_url: String,
        #[serde(default)]
        transmission_id: String,
        #[serde(default)]
        transmission_sig: String,
        #[serde(default)]
        transmission_time: String,
        #[serde(default)]
        webhook_id: String,
        #[serde(borrow)]
        webhook_event: &'r serde_json::value::RawValue,
    }
    let text = match body
        .open(rocket::data::ByteUnit::Mebibyte(1))
        .into_string()
        .await
    {
        Ok(text) if text.is_complete() => text.into_inner(),
        _ => {
            return error(
                413,
                "INVALID_REQUEST",
                None,
                "The request body is too large.",
            )
        }
    };
    let Ok(b) = serde_json::from_str::<VerifyRequest<'_>>(&text) else {
        return error(
            400,
            "INVALID_REQUEST",
            Some("MALFORMED_REQUEST_JSON"),
            "The request JSON is not well formed.",
        );
    };
    let h = TransmissionHeaders {
        transmission_id: b.transmission_id,
        transmission_time: b.transmission_time,
        transmission_sig: b.transmission_sig,
        cert_url: b.cert_url,
        auth_algo: b.auth_algo,
    };
    let trust = verify::TrustStore {
        certs: verify::pem_certs(sim.signer.ca_pem.as_bytes()).unwrap_or_default(),
    };
    let policy = verify::CertPolicy {
        extra_url_prefixes: vec![sim.base.clone()],
        extra_subject_names: vec![SIMULATOR_CERT_NAME.into()],
    };
    let ok = verify::verify(
        &h,
        b.webhook_event.get().as_bytes(),
        &b.webhook_id,
        sim.signer.cert_pem.as_bytes(),
        &trust,
        &policy,
        std::time::SystemTime::now(),
    )
    .is_ok();
    (
        Status::Ok,
        Json(json!({ "verification_status": if ok { "SUCCESS" } else { "FAILURE" } })),
    )
}
