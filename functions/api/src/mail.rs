//! Email rendering: HTML and plain text for every kind of message, from templates with HTML
//! escaping (never by string concatenation).

use minijinja::{context, Environment};
use reclaim_workflow::text;
use reclaim_workflow::{Candidate, MailKind};

/// The data one message is rendered from.
#[derive(Debug)]
pub struct MailContext<'a> {
    pub kind: MailKind,
    pub recipient_name: String,
    pub candidate: &'a Candidate,
    pub yes_url: Option<String>,
    pub no_url: Option<String>,
    pub candidate_url: String,
    /// The deployment's currency, shown with the amount.
    pub currency: &'a str,
}

/// A rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The template environment, built once.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            // The templates are part of the binary and covered by tests; a broken one is a
            // build defect, reported when rendering.
            if let Err(e) = env.add_template(name, src) {
                tracing::error!(template = name, error = %e, "template does not parse");
            }
        }
        Renderer { env }
    }

    pub fn render(&self, ctx: &MailContext<'_>) -> Result<Rendered, minijinja::Error> {
        let c = ctx.candidate;
        // Stored text is checked when it enters; what was stored before the checks existed
        // is shown escaped, so it still cannot break a line of the message or its subject.
        let shown = |v: &str| text::cleaned(v, true);
        let software = shown(&c.software.label());
        let software_full = match &c.software.version {
            Some(v) => format!("{software} {}", shown(v)),
            None => software.clone(),
        };
        let subject = match ctx.kind {
            MailKind::AskUser => format!("Do you still need {software}?"),
            MailKind::Reminder => format!("Reminder: do you still need {software}?"),
            MailKind::KeepRequest => format!("Keep request for {software} ({})", c.number),
            MailKind::Kept => format!("You keep {software}"),
            MailKind::KeepRejected => format!("{software} will be removed"),
            MailKind::Removed => format!("{software} has been removed"),
            MailKind::Canceled => format!("{software}: reclamation canceled"),
            MailKind::ManualTask => format!("Please remove {software} ({})", c.number),
        };
        let user = c.user.as_ref();
        let vars = context! {
            kind => ctx.kind.as_str(),
            name => shown(&ctx.recipient_name),
            number => shown(&c.number),
            publisher => shown(&c.software.publisher),
            product => shown(&c.software.product),
            name_of_software => software.clone(),
            version => c.software.version.as_deref().map(shown),
            software => software_full,
            device => c.device.as_deref().map(shown),
            justification => c.justification.as_str(),
            inactive_days => c.inactive_days,
            reason => c.reason(),
            deadline => c.deadline_at.map(|d| d.format("%A %-d %B %Y").to_string()),
            user_name => user.map(|u| shown(&u.display_name)),
            yes_url => ctx.yes_url,
            no_url => ctx.no_url,
            candidate_url => ctx.candidate_url,
            savings => text::saving(c.saving(), ctx.currency),
            instructions => instructions(c),
            subject => subject,
        };
        let html = self.env.get_template("mail.html")?.render(&vars)?;
        let text = self.env.get_template("mail.txt")?.render(&vars)?;
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }
}

fn instructions(c: &Candidate) -> Option<String> {
    match crate::builtin::manual_task(c) {
        reclaim_workflow::RevocationResult::ManualTask { instructions, .. } => Some(instructions),
        _ => None,
    }
}

const TEMPLATES: &[(&str, &str)] = &[
    ("mail.html", include_str!("../templates/mail/mail.html")),
    ("mail.txt", include_str!("../templates/mail/mail.txt")),
];
