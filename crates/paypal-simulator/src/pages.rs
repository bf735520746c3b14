//! The simulator's pages and test controls: the webhook certificate and CA, the buyer's
//! approval page (Approve / Decline / Cancel), and `/simulator/*` for tests to approve
//! orders, settle or reverse captures, steer behaviour and flush held webhooks.

use super::*;
use crate::api::find_capture;

#[get("/v1/notifications/certs/<_name>")]
pub(crate) fn cert(sim: &State<Arc<Sim>>, _name: &str) -> (ContentType, String) {
    (ContentType::Plain, sim.signer.cert_pem.clone())
}

#[get("/simulator/ca.pem")]
pub(crate) fn ca(sim: &State<Arc<Sim>>) -> (ContentType, String) {
    (ContentType::Plain, sim.signer.ca_pem.clone())
}

#[get("/checkoutnow?<token>")]
pub(crate) fn approval_page(sim: &State<Arc<Sim>>, token: &str) -> Result<RawHtml<String>, Status> {
    let orders = sim.orders.lock().unwrap();
    let order = orders.get(token).ok_or(Status::NotFound)?;
    let amount = &order.body["purchase_units"][0]["amount"];
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    Ok(RawHtml(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>PayPal Simulator</title><link rel="icon" href="data:,">
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}button{{display:block;width:100%;margin:.5rem 0;padding:.8rem;font-size:1rem;border-radius:8px;border:1px solid #888;cursor:pointer}}.approve{{background:#ffc439;border-color:#ffc439}}</style></head>
<body><main><h1>PayPal Simulator</h1><p>Pay <strong id="amount">{value} {currency}</strong> for <span>{desc}</span>.</p>
<form method="post" action="/checkoutnow/{id}/approve"><button class="approve" type="submit">Approve</button></form>
<form method="post" action="/checkoutnow/{id}/decline"><button type="submit">Decline (card will be refused)</button></form>
<form method="post" action="/checkoutnow/{id}/cancel"><button type="submit">Cancel and return</button></form>
<p><small>Test double of PayPal for local work. No money moves.</small></p></main></body></html>"#,
        value = esc(amount["value"].as_str().unwrap_or("")),
        currency = esc(amount["currency_code"].as_str().unwrap_or("")),
        desc = esc(order.body["purchase_units"][0]["description"]
            .as_str()
            .unwrap_or("")),
        id = esc(&order.id),
    )))
}

pub(crate) fn with_token(url: &str, id: &str, payer: bool) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    if payer {
        format!("{url}{sep}token={id}&PayerID=SIMPAYER01")
    } else {
        format!("{url}{sep}token={id}")
    }
}

#[post("/checkoutnow/<id>/<action>")]
pub(crate) fn approval_action(
    sim: &State<Arc<Sim>>,
    id: &str,
    action: &str,
) -> Result<Redirect, Status> {
    let sim_arc: Arc<Sim> = (*sim).clone();
    let mut orders = sim.orders.lock().unwrap();
    let order = orders.get_mut(id).ok_or(Status::NotFound)?;
    match action {
        "approve" | "decline" => {
            order.status = "APPROVED".into();
            order.decline_funding = action == "decline";
            let reply = sim.order_json(order);
            let url = with_token(&order.return_url, id, true);
            drop(orders);
            sim_arc.webhook("CHECKOUT.ORDER.APPROVED", "checkout-order", reply);
            Ok(Redirect::to(url))
        }
        "cancel" => Ok(Redirect::to(with_token(&order.cancel_url, id, false))),
        _ => Err(Status::NotFound),
    }
}

/// Approves an order without the browser (tests of a buyer who never comes back).
#[post("/simulator/orders/<id>/approve")]
pub(crate) fn approve_only(sim: &State<Arc<Sim>>, id: &str) -> Status {
    let sim_arc: Arc<Sim> = (*sim).clone();
    let mut orders = sim.orders.lock().unwrap();
    let Some(order) = orders.get_mut(id) else {
        return Status::NotFound;
    };
    order.status = "APPROVED".into();
    let reply = sim.order_json(order);
    drop(orders);
    sim_arc.webhook("CHECKOUT.ORDER.APPROVED", "checkout-order", reply);
    Status::Ok
}

/// Settles a PENDING capture as COMPLETED, or reverses a completed one (chargeback).
#[post("/simulator/captures/<id>/<action>")]
pub(crate) fn capture_action(sim: &State<Arc<Sim>>, id: &str, action: &str) -> Status {
    let sim_arc: Arc<Sim> = (*sim).clone();
    let mut orders = sim.orders.lock().unwrap();
    let Some((order, i)) = find_capture(&mut orders, id) else {
        return Status::NotFound;
    };
    let (status, event, rtype) = match action {
        "complete" => ("COMPLETED", "PAYMENT.CAPTURE.COMPLETED", "capture"),
        "reverse" => ("REVERSED", "PAYMENT.CAPTURE.REVERSED", "refund"),
        "deny" => ("DECLINED", "PAYMENT.CAPTURE.DENIED", "capture"),
        _ => return Status::NotFound,
    };
    order.captures[i]["status"] = json!(status);
    let resource = if rtype == "refund" {
        json!({ "id": sim.next_id("REV"), "status": "COMPLETED", "links": [{ "href": format!("{}/v2/payments/captures/{}", sim.base, id), "rel": "up", "method": "GET" }] })
    } else {
        order.captures[i].clone()
    };
    drop(orders);
    sim_arc.webhook(event, rtype, resource);
    Status::Ok
}

#[post("/simulator/control", data = "<body>")]
pub(crate) fn set_control(sim: &State<Arc<Sim>>, body: Json<Value>) -> Json<Control> {
    let mut current = serde_json::to_value(sim.control()).unwrap_or_default();
    if let (Some(cur), Some(new)) = (current.as_object_mut(), body.as_object()) {
        for (k, v) in new {
            cur.insert(k.clone(), v.clone());
        }
    }
    let control: Control = serde_json::from_value(current).unwrap_or_default();
    *sim.control.lock().unwrap() = control.clone();
    Json(control)
}

#[get("/simulator/control")]
pub(crate) fn get_control(sim: &State<Arc<Sim>>) -> Json<Control> {
    Json(sim.control())
}

/// Sends every held webhook, newest first (the reorder mode).
#[post("/simulator/webhooks/flush")]
pub(crate) async fn flush(sim: &State<Arc<Sim>>) -> Json<Value> {
    let held: Vec<(String, Vec<u8>)> = std::mem::take(&mut *sim.held.lock().unwrap());
    let n = held.len();
    for (_, body) in held.into_iter().rev() {
        sim.deliver(&body).await;
    }
    Json(json!({ "sent": n }))
}
