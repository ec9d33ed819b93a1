//! The five functions' IAM roles as `infra/template.yaml` deploys them (after the SAM
//! transform), and a check of recorded AWS calls ([`reclaim_aws::calls`]) against them: a call
//! a role would deny is named with what the role grants; a grant no call uses is named too,
//! unless [`Exception`] says why no journey can use it.
//!
//! What is modelled of IAM: `Allow`/`Deny` statements with `Action` (wildcards,
//! case-insensitive) and `Resource` (wildcards), and the conditions the template uses
//! (`StringEquals`/`StringLike` and their `ForAllValues:`/`ForAnyValue:` forms, on
//! `dynamodb:LeadingKeys` and `ses:FromAddress`; a missing key fails a plain operator and passes
//! `ForAllValues:`, as in IAM). Anything else (`NotAction`, an unknown operator or key) makes
//! the statement count as granting nothing, and says so. Template values resolve `Ref`,
//! `Fn::GetAtt`, `Fn::Sub`, `Fn::If`, `Fn::Join` and the pseudo parameters, binding the
//! template's parameters to what the test deployed ([`Deployment`]).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use reclaim_aws::calls::{bare_address, AwsCall, Function, IamRequest, Resource};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// What a journey deployed: the values the template's parameters stand for.
#[derive(Clone, Debug)]
pub struct Deployment {
    pub table: String,
    /// `RECLAIM_SENDER`; the SES identity is its domain (`SenderDomain`).
    pub sender: String,
    pub configuration_set: Option<String>,
    /// The link key secret's ARN (`LinkKeySecretArn`).
    pub link_key_secret: String,
    /// `VendorSecretsPrefix`.
    pub vendor_prefix: String,
    /// `OidcIssuer` and `OidcClientSecretName`, when the workspace signs people in.
    pub oidc: Option<(String, String)>,
}

impl Deployment {
    fn parameter(&self, name: &str) -> Option<String> {
        let address = bare_address(&self.sender).to_string();
        Some(match name {
            "SenderAddress" => address,
            "SenderDomain" => domain_of(&address).to_string(),
            "SesConfigurationSet" => self.configuration_set.clone().unwrap_or_default(),
            "LinkKeySecretArn" => self.link_key_secret.clone(),
            "VendorSecretsPrefix" => self.vendor_prefix.clone(),
            "OidcIssuer" => self.oidc.as_ref().map(|o| o.0.clone()).unwrap_or_default(),
            "OidcClientSecretName" => self.oidc.as_ref().map(|o| o.1.clone()).unwrap_or_default(),
            _ => return None,
        })
    }

    fn table_arn(&self) -> String {
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{}", self.table)
    }

    /// The ARN IAM authorizes a request's resource as.
    pub fn arn(&self, r: &Resource) -> String {
        match r {
            Resource::Table { table } => {
                format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}")
            }
            Resource::Index { table, index } => {
                format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/index/{index}")
            }
            // A secret named without its ARN is authorized by its ARN, which ends in a
            // random six-character suffix.
            Resource::Secret { id } if id.starts_with("arn:") => id.clone(),
            Resource::Secret { id } => {
                format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{id}-AbC123")
            }
            // The deployment verifies the sender's domain in SES (`SenderDomain`).
            Resource::SesIdentity { from } => format!(
                "arn:aws:ses:{REGION}:{ACCOUNT}:identity/{}",
                domain_of(bare_address(from))
            ),
            Resource::SesConfigurationSet { name } => {
                format!("arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/{name}")
            }
            Resource::Unknown { what } => format!("(unknown resource: {what})"),
        }
    }
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or(address)
}

/// `infra/template.yaml` after the SAM transform, made once per test process by
/// `infra/sam_transform.py` from the project's venv (as `test.sh` does), so the check always
/// reads the template as it is now.
pub fn transformed_template() -> &'static Value {
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let venv = std::env::var_os("RECLAIM_VENV")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/reclaim-venv"))
            })
            .unwrap_or_else(|| PathBuf::from(".venv"));
        let python = venv.join("bin/python");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("template.transformed.{}.json", std::process::id()));
        let run = std::process::Command::new(&python)
            .arg(root.join("infra/sam_transform.py"))
            .arg(root.join("infra/template.yaml"))
            .arg(&out)
            .output();
        let fix = format!(
            "the IAM roles are checked against infra/template.yaml after the SAM transform, made \
             by `{} infra/sam_transform.py`; run ./test.sh once (it makes the venv with \
             aws-sam-translator and cfn-lint), or set RECLAIM_VENV to a venv that has them",
            python.display()
        );
        let output = match run {
            Ok(o) => o,
            Err(e) => panic!("cannot run {}: {e}: {fix}", python.display()),
        };
        assert!(
            output.status.success(),
            "infra/sam_transform.py failed ({}): {}{}\n{fix}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(&out)
            .unwrap_or_else(|e| panic!("{}: {e}: {fix}", out.display()));
        let _ = std::fs::remove_file(&out);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", out.display()))
    })
}

/// The logical id of a function in the template.
pub fn logical_id(f: Function) -> &'static str {
    match f {
        Function::Respond => "RespondFunction",
        Function::Api => "ApiFunction",
        Function::Effects => "EffectsFunction",
        Function::Sweep => "SweepFunction",
        Function::Connectors => "ConnectorsFunction",
    }
}

/// One policy statement with the template's values resolved for a deployment.
#[derive(Clone, Debug)]
pub struct Statement {
    /// `RespondFunctionRolePolicy1/ReadCandidates`, `TableKeyPolicy#0`, ...
    pub name: String,
    pub allow: bool,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// operator → key → values
    pub conditions: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Why this statement cannot be evaluated here (it then grants nothing).
    pub unsupported: Option<String>,
}

impl Statement {
    fn describe(&self) -> String {
        let mut s = format!(
            "{}: {} {:?} on {:?}",
            self.name,
            if self.allow { "Allow" } else { "Deny" },
            self.actions,
            self.resources
        );
        if !self.conditions.is_empty() {
            s.push_str(&format!(" if {:?}", self.conditions));
        }
        if let Some(u) = &self.unsupported {
            s.push_str(&format!(" (not evaluated: {u})"));
        }
        s
    }

    fn action_matches(&self, pattern: &str, action: &str) -> bool {
        glob(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
    }

    /// Whether the statement's conditions hold for `r`; `Err` names what cannot be evaluated.
    fn conditions_hold(&self, r: &IamRequest) -> Result<bool, String> {
        for (op, keys) in &self.conditions {
            for (key, patterns) in keys {
                let values: Vec<String> = match key.as_str() {
                    "dynamodb:LeadingKeys" => r.leading_keys.clone(),
                    "ses:FromAddress" => r.from_address.clone().into_iter().collect(),
                    // Set only on requests a service makes on the function's behalf.
                    "kms:ViaService" => Vec::new(),
                    other => return Err(format!("condition key {other}")),
                };
                let (set, base) = match op.split_once(':') {
                    Some((set, base)) => (Some(set), base),
                    None => (None, op.as_str()),
                };
                let like = match base {
                    "StringEquals" => false,
                    "StringLike" => true,
                    other => return Err(format!("condition operator {other}")),
                };
                let one = |v: &String| {
                    patterns
                        .iter()
                        .any(|p| if like { glob(p, v) } else { p == v })
                };
                let holds = match set {
                    // Every value matches: true when there are none (IAM's rule).
                    Some("ForAllValues") => values.iter().all(one),
                    Some("ForAnyValue") => values.iter().any(one),
                    None => values.len() == 1 && one(&values[0]),
                    Some(other) => return Err(format!("condition set operator {other}")),
                };
                if !holds {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Whether this statement applies to `r` (its effect then decides); with which action
    /// and resource pattern.
    fn applies(&self, d: &Deployment, r: &IamRequest) -> Option<(usize, usize)> {
        if self.unsupported.is_some() {
            return None;
        }
        let a = self
            .actions
            .iter()
            .position(|p| self.action_matches(p, &r.action))?;
        let arn = d.arn(&r.resource);
        let res = self.resources.iter().position(|p| glob(p, &arn))?;
        match self.conditions_hold(r) {
            Ok(true) => Some((a, res)),
            _ => None,
        }
    }
}

/// `*` any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// A function's role: its statements, and the AWS managed policies it attaches (whose content
/// the template does not hold).
#[derive(Clone, Debug)]
pub struct Role {
    pub function: Function,
    pub logical_id: String,
    pub statements: Vec<Statement>,
    pub managed: Vec<String>,
}

struct Resolver<'a> {
    template: &'a Value,
    d: &'a Deployment,
}

impl Resolver<'_> {
    fn resources(&self) -> &Map<String, Value> {
        self.template["Resources"].as_object().expect("Resources")
    }

    fn reference(&self, name: &str) -> Option<String> {
        match name {
            "AWS::Partition" => return Some("aws".into()),
            "AWS::Region" => return Some(REGION.into()),
            "AWS::AccountId" => return Some(ACCOUNT.into()),
            "AWS::URLSuffix" => return Some("amazonaws.com".into()),
            "AWS::StackName" => return Some("reclaim".into()),
            "Table" => return Some(self.d.table.clone()),
            _ => {}
        }
        if let Some(v) = self.d.parameter(name) {
            return Some(v);
        }
        if let Some(p) = self.template["Parameters"].get(name) {
            return p["Default"].as_str().map(String::from);
        }
        // Any other resource: a recognisable stand-in that no recorded call names.
        self.resources().get(name).map(|_| format!("{name}-id"))
    }

    fn get_att(&self, name: &str, attr: &str) -> Option<String> {
        match (name, attr) {
            ("Table", "Arn") => Some(self.d.table_arn()),
            ("Table", "StreamArn") => Some(format!(
                "{}/stream/2026-01-01T00:00:00.000",
                self.d.table_arn()
            )),
            _ if self.resources().contains_key(name) => {
                Some(format!("arn:aws:template:{REGION}:{ACCOUNT}:{name}/{attr}"))
            }
            _ => None,
        }
    }

    fn condition(&self, name: &str) -> bool {
        let c = &self.template["Conditions"][name];
        self.truth(c)
    }

    fn truth(&self, v: &Value) -> bool {
        if let Some(args) = v.get("Fn::Not") {
            return !self.truth(&args[0]);
        }
        if let Some(args) = v.get("Fn::Equals") {
            return self.scalar(&args[0]) == self.scalar(&args[1]);
        }
        if let Some(args) = v.get("Fn::And").and_then(Value::as_array) {
            return args.iter().all(|a| self.truth(a));
        }
        if let Some(args) = v.get("Fn::Or").and_then(Value::as_array) {
            return args.iter().any(|a| self.truth(a));
        }
        if let Some(name) = v.get("Condition").and_then(Value::as_str) {
            return self.condition(name);
        }
        panic!("cannot evaluate the condition {v}")
    }

    fn scalar(&self, v: &Value) -> String {
        match self.values(v).as_slice() {
            [one] => one.clone(),
            other => panic!("expected one value for {v}, got {other:?}"),
        }
    }

    fn sub(&self, text: &str, vars: Option<&Map<String, Value>>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let end = rest[i..]
                .find('}')
                .map(|e| i + e)
                .expect("closing brace in Fn::Sub");
            let var = &rest[i + 2..end];
            let value = vars
                .and_then(|m| m.get(var))
                .map(|v| self.scalar(v))
                .or_else(|| match var.split_once('.') {
                    Some((n, a)) => self.get_att(n, a),
                    None => self.reference(var),
                })
                .unwrap_or_else(|| panic!("cannot resolve ${{{var}}} in Fn::Sub {text:?}"));
            out.push_str(&value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Every value `v` stands for (a list flattens; `AWS::NoValue` is none).
    fn values(&self, v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items.iter().flat_map(|i| self.values(i)).collect(),
            Value::Object(o) if o.len() == 1 => {
                let (k, arg) = o.iter().next().expect("one key");
                match k.as_str() {
                    "Ref" if arg == "AWS::NoValue" => Vec::new(),
                    "Ref" => vec![self
                        .reference(arg.as_str().expect("Ref name"))
                        .unwrap_or_else(|| panic!("cannot resolve {v}"))],
                    "Fn::GetAtt" => {
                        let (n, a) = match arg {
                            Value::Array(x) => (
                                x[0].as_str().expect("GetAtt name").to_string(),
                                x[1].as_str().expect("GetAtt attribute").to_string(),
                            ),
                            Value::String(s) => {
                                let (n, a) = s.split_once('.').expect("Name.Attribute");
                                (n.to_string(), a.to_string())
                            }
                            _ => panic!("cannot resolve {v}"),
                        };
                        vec![self
                            .get_att(&n, &a)
                            .unwrap_or_else(|| panic!("cannot resolve {v}"))]
                    }
                    "Fn::Sub" => match arg {
                        Value::String(s) => vec![self.sub(s, None)],
                        Value::Array(x) => vec![self.sub(
                            x[0].as_str().expect("Fn::Sub text"),
                            x.get(1).and_then(Value::as_object),
                        )],
                        _ => panic!("cannot resolve {v}"),
                    },
                    "Fn::If" => {
                        let cond = arg[0].as_str().expect("Fn::If condition");
                        self.values(&arg[if self.condition(cond) { 1 } else { 2 }])
                    }
                    "Fn::Join" => {
                        let sep = arg[0].as_str().expect("Fn::Join separator");
                        vec![self.values(&arg[1]).join(sep)]
                    }
                    _ => panic!("cannot resolve {v}"),
                }
            }
            other => panic!("cannot resolve {other}"),
        }
    }

    fn statements(&self, policy: &str, doc: &Value) -> Vec<Statement> {
        let list = match &doc["Statement"] {
            Value::Array(a) => a.clone(),
            one => vec![one.clone()],
        };
        // A statement can itself be conditional (`Fn::If` with `AWS::NoValue` for "none").
        let list: Vec<Value> = list
            .into_iter()
            .filter_map(|s| match s.get("Fn::If").and_then(Value::as_array) {
                Some(arg) => {
                    let cond = arg[0].as_str().expect("Fn::If condition");
                    let chosen = arg[if self.condition(cond) { 1 } else { 2 }].clone();
                    (chosen["Ref"] != "AWS::NoValue").then_some(chosen)
                }
                None => Some(s),
            })
            .collect();
        list.iter()
            .enumerate()
            .map(|(i, s)| {
                let name = match s["Sid"].as_str() {
                    Some(sid) => format!("{policy}/{sid}"),
                    None => format!("{policy}#{i}"),
                };
                let mut unsupported = None;
                for k in ["NotAction", "NotResource", "NotPrincipal"] {
                    if s.get(k).is_some() {
                        unsupported = Some(k.to_string());
                    }
                }
                let mut conditions = BTreeMap::new();
                if let Some(c) = s["Condition"].as_object() {
                    for (op, keys) in c {
                        let mut m = BTreeMap::new();
                        for (key, vals) in keys.as_object().expect("condition keys") {
                            m.insert(key.clone(), self.values(vals));
                        }
                        conditions.insert(op.clone(), m);
                    }
                }
                Statement {
                    name,
                    allow: s["Effect"] == "Allow",
                    actions: self.values(&s["Action"]),
                    resources: self.values(&s["Resource"]),
                    conditions,
                    unsupported,
                }
            })
            .collect()
    }

    fn role(&self, f: Function) -> Role {
        let function = &self.resources()[logical_id(f)];
        let role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{}: its role is not one of the template's", logical_id(f)));
        let role = &self.resources()[role_id]["Properties"];
        let mut statements = Vec::new();
        for p in role["Policies"].as_array().into_iter().flatten() {
            let name = p["PolicyName"].as_str().unwrap_or("inline");
            statements.extend(self.statements(name, &p["PolicyDocument"]));
        }
        let mut managed = Vec::new();
        for m in role["ManagedPolicyArns"].as_array().into_iter().flatten() {
            match m.get("Ref").and_then(Value::as_str) {
                Some(id) => {
                    let res = &self.resources()[id];
                    assert_eq!(res["Type"], "AWS::IAM::ManagedPolicy", "{id}");
                    statements.extend(self.statements(id, &res["Properties"]["PolicyDocument"]));
                }
                None => managed.extend(self.values(m)),
            }
        }
        Role {
            function: f,
            logical_id: role_id.to_string(),
            statements,
            managed,
        }
    }
}

/// The roles of the five functions, resolved for `d`.
pub fn roles(d: &Deployment) -> BTreeMap<Function, Role> {
    let r = Resolver {
        template: transformed_template(),
        d,
    };
    Function::ALL.iter().map(|f| (*f, r.role(*f))).collect()
}

impl Role {
    /// Why `r` would be denied, if it would.
    pub fn denial(&self, d: &Deployment, r: &IamRequest) -> Option<String> {
        let denied = self
            .statements
            .iter()
            .find(|s| !s.allow && s.applies(d, r).is_some());
        let allowed = self
            .statements
            .iter()
            .any(|s| s.allow && s.applies(d, r).is_some());
        match (denied, allowed) {
            (Some(s), _) => Some(format!("explicitly denied by {}", s.name)),
            (None, true) => None,
            (None, false) => Some("no statement allows it".into()),
        }
    }

    /// What the role grants, one statement a line.
    pub fn grants(&self) -> String {
        let mut lines: Vec<String> = self
            .statements
            .iter()
            .map(|s| format!("    {}", s.describe()))
            .collect();
        for m in &self.managed {
            lines.push(format!("    managed policy {m}"));
        }
        lines.join("\n")
    }
}

fn describe_request(d: &Deployment, r: &IamRequest) -> String {
    let mut s = format!("{} on {}", r.action, d.arn(&r.resource));
    if !r.leading_keys.is_empty() {
        let mut prefixes: Vec<String> = r
            .leading_keys
            .iter()
            .map(|k| match reclaim_aws::calls::key_prefix(k) {
                p if p.ends_with('#') => format!("{p}*"),
                p => p.to_string(),
            })
            .collect();
        prefixes.dedup();
        s.push_str(&format!(" (dynamodb:LeadingKeys {})", prefixes.join(", ")));
    }
    if let Some(f) = &r.from_address {
        s.push_str(&format!(" (ses:FromAddress {f})"));
    }
    s
}

/// Every recorded request the function's role would deny (once per call, action, resource
/// and key prefixes), then what each such function's role grants.
pub fn denials(d: &Deployment, calls: &[AwsCall]) -> Vec<String> {
    let roles = roles(d);
    let mut by_function: BTreeMap<Function, std::collections::BTreeSet<String>> = BTreeMap::new();
    for call in calls {
        let role = &roles[&call.function];
        let found = by_function.entry(call.function).or_default();
        if call.requests.is_empty() {
            found.insert(format!(
                "{}: the call asks IAM for nothing this check understands",
                call.describe()
            ));
        }
        for r in &call.requests {
            if let Some(why) = role.denial(d, r) {
                found.insert(format!(
                    "{} would be denied: {} ({why})",
                    call.describe(),
                    describe_request(d, r)
                ));
            }
        }
    }
    let mut out = Vec::new();
    for (f, found) in by_function {
        if found.is_empty() {
            continue;
        }
        out.extend(found);
        let role = &roles[&f];
        out.push(format!(
            "  {f} ({}) grants:\n{}",
            role.logical_id,
            role.grants()
        ));
    }
    out
}

/// Fails naming every call the functions' roles would deny.
pub fn assert_allowed(d: &Deployment, calls: &[AwsCall]) {
    let found = denials(d, calls);
    assert!(
        found.is_empty(),
        "infra/template.yaml does not let the functions make these calls (a real account would \
         refuse them):\n{}",
        found.join("\n")
    );
}

/// A grant that no journey can use, and why.
#[derive(Clone, Debug)]
pub struct Exception {
    /// `None`: every function.
    pub function: Option<Function>,
    /// The grant's action pattern as the template writes it (`sqs:SendMessage`, `kms:*`
    /// matches every kms action), or `managed-policy`.
    pub action: &'static str,
    /// Text the grant's resource contains.
    pub resource: &'static str,
    pub why: &'static str,
}

/// One unit of what a role grants: an action pattern on a resource pattern in one statement,
/// or one `dynamodb:LeadingKeys` pattern of a statement, or a managed policy.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub function: Function,
    pub statement: String,
    pub action: String,
    pub resource: String,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {} on {}",
            self.function, self.statement, self.action, self.resource
        )
    }
}

/// Every grant of every role that no recorded call uses and no exception explains, and every
/// exception that explains nothing (so the list stays true).
pub fn unused_grants(d: &Deployment, calls: &[AwsCall], exceptions: &[Exception]) -> Vec<String> {
    let roles = roles(d);
    let mut used = std::collections::BTreeSet::new();
    let mut grants = Vec::new();
    for role in roles.values() {
        for s in role.statements.iter().filter(|s| s.allow) {
            for a in &s.actions {
                for r in &s.resources {
                    grants.push(Grant {
                        function: role.function,
                        statement: s.name.clone(),
                        action: a.clone(),
                        resource: r.clone(),
                    });
                }
            }
            for p in s
                .conditions
                .values()
                .filter_map(|keys| keys.get("dynamodb:LeadingKeys"))
                .flatten()
            {
                grants.push(Grant {
                    function: role.function,
                    statement: s.name.clone(),
                    action: "dynamodb:LeadingKeys".into(),
                    resource: p.clone(),
                });
            }
        }
        for m in &role.managed {
            grants.push(Grant {
                function: role.function,
                statement: "ManagedPolicyArns".into(),
                action: "managed-policy".into(),
                resource: m.clone(),
            });
        }
    }
    for call in calls {
        let role = &roles[&call.function];
        for r in &call.requests {
            if role.denial(d, r).is_some() {
                continue;
            }
            for s in role.statements.iter().filter(|s| s.allow) {
                let Some((a, res)) = s.applies(d, r) else {
                    continue;
                };
                used.insert((
                    call.function,
                    s.name.clone(),
                    s.actions[a].clone(),
                    s.resources[res].clone(),
                ));
                // Every pattern that some leading key of an allowed request matched.
                for p in s
                    .conditions
                    .values()
                    .filter_map(|keys| keys.get("dynamodb:LeadingKeys"))
                    .flatten()
                {
                    if r.leading_keys.iter().any(|k| glob(p, k)) {
                        used.insert((
                            call.function,
                            s.name.clone(),
                            "dynamodb:LeadingKeys".into(),
                            p.clone(),
                        ));
                    }
                }
            }
        }
    }
    let excepted = |g: &Grant, e: &Exception| {
        e.function.is_none_or(|f| f == g.function)
            && glob(
                &e.action.to_ascii_lowercase(),
                &g.action.to_ascii_lowercase(),
            )
            && g.resource.contains(e.resource)
    };
    let mut out = Vec::new();
    let mut explained = vec![false; exceptions.len()];
    for g in &grants {
        let key = (
            g.function,
            g.statement.clone(),
            g.action.clone(),
            g.resource.clone(),
        );
        if used.contains(&key) {
            continue;
        }
        match exceptions.iter().position(|e| excepted(g, e)) {
            Some(i) => explained[i] = true,
            None => out.push(format!("unused grant: {g}")),
        }
    }
    for (e, hit) in exceptions.iter().zip(explained) {
        if !hit {
            out.push(format!(
                "the exception for {} on *{}* ({}) matches no unused grant: remove it",
                e.action, e.resource, e.why
            ));
        }
    }
    out
}

/// Statements that condition on `dynamodb:LeadingKeys` but allow an action that names no key
/// (a scan): `ForAllValues` holds for an empty set, so such a statement grants everything.
pub fn leading_key_holes(d: &Deployment) -> Vec<String> {
    let mut out = Vec::new();
    for role in roles(d).values() {
        for s in role.statements.iter().filter(|s| s.allow) {
            let keyed = s
                .conditions
                .values()
                .any(|k| k.contains_key("dynamodb:LeadingKeys"));
            if !keyed {
                continue;
            }
            for keyless in [
                "dynamodb:Scan",
                "dynamodb:DescribeTable",
                "dynamodb:ListTables",
            ] {
                if s.actions.iter().any(|a| s.action_matches(a, keyless)) {
                    out.push(format!(
                        "{} {}: {keyless} names no partition key, so its dynamodb:LeadingKeys \
                         condition holds for every item",
                        role.function, s.name
                    ));
                }
            }
        }
    }
    out
}

/// How many requests each function made, by action and key prefix (for the test's output).
pub fn summary(d: &Deployment, calls: &[AwsCall]) -> String {
    let mut by: BTreeMap<Function, BTreeMap<String, usize>> = BTreeMap::new();
    let mut count: BTreeMap<Function, usize> = BTreeMap::new();
    for c in calls {
        *count.entry(c.function).or_default() += 1;
        for r in &c.requests {
            let mut prefixes: Vec<&str> = r
                .leading_keys
                .iter()
                .map(|k| reclaim_aws::calls::key_prefix(k))
                .collect();
            prefixes.sort();
            prefixes.dedup();
            let resource = match &r.resource {
                Resource::Index { index, .. } => format!("index/{index}"),
                Resource::Table { .. } => "table".to_string(),
                other => d.arn(other),
            };
            let line = if prefixes.is_empty() {
                format!("{} on {resource}", r.action)
            } else {
                format!("{} on {resource} {}", r.action, prefixes.join(","))
            };
            *by.entry(c.function).or_default().entry(line).or_default() += 1;
        }
    }
    let mut out = String::new();
    for (f, lines) in by {
        out.push_str(&format!("{f}: {} calls\n", count[&f]));
        for (l, n) in lines {
            out.push_str(&format!("  {n:4} {l}\n"));
        }
    }
    out
}
