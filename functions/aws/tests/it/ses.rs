//! The SES mailer against the emulator: messages go out once per key, and what the emulator
//! received is read back and checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use reclaim_api::ManualTaskRevoker;
use reclaim_aws::wiring::Function;
use reclaim_aws::SesMailer;
use reclaim_workflow::ports::{Mailer, OutgoingMail, SystemClock};
use std::sync::Arc;

const KEY: &str = "0123456789abcdef0123456789abcdef-mail";

/// The `effects` function's mailer over its own clients (its calls are checked against its
/// role by `Functions::check`), and the operator's SES client.
async fn effects_mailer(sender: &str) -> (SesMailer, aws_sdk_sesv2::Client, common::Functions) {
    let store = common::fresh_store("mail").await;
    let functions = common::Functions::new(&store, sender, KEY).await;
    let w = functions
        .start(Function::Effects, Arc::new(ManualTaskRevoker))
        .await;
    let mailer = SesMailer::new(
        w.clients.ses(),
        w.store.clone(),
        sender,
        None,
        Arc::new(SystemClock),
    );
    (
        mailer,
        aws_sdk_sesv2::Client::new(&functions.sdk),
        functions,
    )
}

async fn mailer(sender: &str) -> (SesMailer, aws_sdk_sesv2::Client, common::Functions) {
    let (m, ses, functions) = effects_mailer(sender).await;
    ses.create_email_identity()
        .email_identity(sender)
        .send()
        .await
        .unwrap();
    (m, ses, functions)
}

fn mail(key: &str, to: &str, subject: &str, link: &str) -> OutgoingMail {
    OutgoingMail {
        key: key.into(),
        to: vec![to.into()],
        subject: subject.into(),
        text: format!("Do you still need it?\n\nYes: {link}?a=keep\nNo: {link}?a=remove\n"),
        html: format!(
            "<p>Do you still need it?</p><p><a href=\"{link}?a=keep\">Yes</a> \
             <a href=\"{link}?a=remove\">No</a></p>"
        ),
    }
}

fn unique(what: &str) -> String {
    common::table_name(what)
}

#[tokio::test]
async fn a_message_is_sent_once_per_key_and_arrives_as_written() {
    let sender = format!("{}@example.com", unique("sender"));
    let (m, _, functions) = mailer(&sender).await;
    let to = format!("{}@example.com", unique("uma"));
    let subject = format!("Adobe Acrobat Pro on LAPTOP-042 {}", unique("s"));
    let link = "https://reclaim.example.com/respond/tok123";
    let msg = mail(&unique("key"), &to, &subject, link);
    m.send(&msg).await.unwrap();
    // The same effect run again (a stream replay): nothing more goes out.
    m.send(&msg).await.unwrap();
    let mut other = msg.clone();
    other.subject.push_str(" (changed)");
    m.send(&other).await.unwrap();

    let sent: Vec<_> = common::sent_mail()
        .await
        .into_iter()
        .filter(|x| x["destinations"]["ToAddresses"][0] == to.as_str())
        .collect();
    assert_eq!(sent.len(), 1, "one message for one key: {sent:?}");
    let got = &sent[0];
    assert_eq!(got["source"], sender.as_str());
    assert_eq!(got["subject"], subject.as_str());
    // The emulator keeps only the HTML part of a two-part message; check what it keeps.
    let body = got["body"].as_str().unwrap();
    assert!(body.contains(&format!("{link}?a=keep")), "{body}");
    assert!(body.contains(&format!("{link}?a=remove")), "{body}");

    // Another key is another message.
    let second = mail(&unique("key"), &to, &subject, link);
    m.send(&second).await.unwrap();
    let count = common::sent_mail()
        .await
        .into_iter()
        .filter(|x| x["destinations"]["ToAddresses"][0] == to.as_str())
        .count();
    assert_eq!(count, 2);
    functions.check();
}

#[tokio::test]
async fn a_refused_message_is_permanent_and_can_be_sent_after_the_fix() {
    // The sender is not a verified identity: SES refuses, which retrying cannot fix.
    let sender = format!("{}@example.com", unique("unverified"));
    let (m, ses, functions) = effects_mailer(&sender).await;
    let to = format!("{}@example.com", unique("bob"));
    let msg = mail(&unique("key"), &to, "Subject", "https://x/respond/t");
    let err = m.send(&msg).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    // Nothing went out, so the key was given back: once the sender is verified, it sends.
    ses.create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap();
    m.send(&msg).await.unwrap();
    let count = common::sent_mail()
        .await
        .into_iter()
        .filter(|x| x["destinations"]["ToAddresses"][0] == to.as_str())
        .count();
    assert_eq!(count, 1);
    functions.check();
}

#[tokio::test]
async fn messages_without_recipients_or_with_too_many_are_refused_before_sending() {
    let sender = format!("{}@example.com", unique("sender"));
    let (m, _, functions) = mailer(&sender).await;
    let mut msg = mail(&unique("key"), "x@example.com", "S", "https://x/r/t");
    msg.to.clear();
    assert!(!m.send(&msg).await.unwrap_err().is_retryable());
    msg.to = (0..51).map(|i| format!("u{i}@example.com")).collect();
    assert!(!m.send(&msg).await.unwrap_err().is_retryable());
    functions.check();
}
