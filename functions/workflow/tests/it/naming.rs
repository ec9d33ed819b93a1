//! One way to name software, for pages, mail, tasks and reasons alike.

use reclaim_workflow::Software;

fn sw(publisher: &str, product: &str, version: Option<&str>) -> Software {
    Software {
        publisher: publisher.into(),
        product: product.into(),
        version: version.map(str::to_string),
        sku: None,
        subscription_id: None,
    }
}

#[test]
fn a_product_that_starts_with_its_publisher_is_named_once() {
    assert_eq!(sw("Zoom", "Zoom Pro", None).label(), "Zoom Pro");
    assert_eq!(sw("Zoom, Inc.", "Zoom Pro", None).label(), "Zoom Pro");
    assert_eq!(
        sw("Microsoft", "Microsoft 365 E5", None).label(),
        "Microsoft 365 E5"
    );
    assert_eq!(
        sw("Tableau", "tableau Desktop", None).label(),
        "tableau Desktop"
    );
    assert_eq!(sw("Slack", "Slack", None).label(), "Slack");
}

#[test]
fn other_products_keep_their_publisher_in_front() {
    assert_eq!(
        sw("Adobe", "Acrobat Pro", None).label(),
        "Adobe Acrobat Pro"
    );
    assert_eq!(sw("TechSmith", "Snagit", None).label(), "TechSmith Snagit");
    // A longer word that merely starts with the publisher's name is another word.
    assert_eq!(sw("Zoom", "Zoomtext", None).label(), "Zoom Zoomtext");
    assert_eq!(sw("", "Notepad++", None).label(), "Notepad++");
}

#[test]
fn the_version_follows_the_name() {
    assert_eq!(
        sw("Adobe", "Acrobat Pro", Some("24.1")).label_with_version(),
        "Adobe Acrobat Pro 24.1"
    );
    assert_eq!(
        sw("Tableau", "Tableau Desktop", Some(" ")).label_with_version(),
        "Tableau Desktop"
    );
}

#[test]
fn money_reads_with_its_currency_and_thousands_separated() {
    use reclaim_workflow::text::{currency_code, money};
    assert_eq!(money(197_500, "USD"), "USD 1,975.00");
    assert_eq!(money(123_456_789, "EUR"), "EUR 1,234,567.89");
    assert_eq!(money(5, "GBP"), "GBP 0.05");
    assert_eq!(money(-23_988, "USD"), "USD -239.88");
    assert_eq!(money(100_000, ""), "1,000.00");
    assert_eq!(currency_code(" EUR ").as_deref(), Ok("EUR"));
    assert!(currency_code("euro").is_err());
    assert!(currency_code("€").is_err());
}

#[test]
fn a_reason_reads_the_same_everywhere_in_words() {
    use reclaim_workflow::{testing, Justification};
    let mut c = testing::candidate();
    c.justification = Justification::LowUsage;
    c.inactive_days = Some(30);
    assert_eq!(c.reason(), "Low usage; last used 30 days ago");
    c.justification = Justification::Overlapping;
    c.inactive_days = Some(1);
    assert_eq!(
        c.reason(),
        "Overlaps another product the user has; last used yesterday"
    );
    c.inactive_days = None;
    assert_eq!(c.reason(), "Overlaps another product the user has");
}
