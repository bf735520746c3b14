//! Health: 200 with the database up, 503 when it cannot be reached.

use rocket::http::Status;

use crate::helpers::TestApp;

#[rocket::async_test]
async fn healthz_is_ok_with_the_database() {
    let app = TestApp::spawn().await;
    let res = app.client.get("/healthz").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    let body: serde_json::Value = res.into_json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
}

#[rocket::async_test]
async fn healthz_is_503_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.client.get("/healthz").dispatch().await.status(),
        Status::Ok
    );
    app.db.drop_now();
    let res = app.client.get("/healthz").dispatch().await;
    assert_eq!(res.status(), Status::ServiceUnavailable);
    let body: serde_json::Value = res.into_json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
}

#[rocket::async_test]
async fn pages_answer_503_not_500_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.db.drop_now();
    let (status, body) = app.get_text("/").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("briefly unavailable"), "{body}");
}
