//! Where a visit came from: the referrer's class (search, social, email, internal, referral or
//! direct) and the campaign the page URL carries (UTM parameters and ad click ids).

use url::Url;

/// The referrer of an event, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// `direct`, `internal`, `search`, `social`, `email` or `referral`.
    pub class: &'static str,
    pub host: Option<String>,
}

/// Campaign fields of the page URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Campaign {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
    /// The first ad click id found (`gclid`, `fbclid`, ...) and its parameter name.
    pub click_id: Option<String>,
    pub click_id_type: Option<String>,
}

/// Ad platforms' click-id parameters.
const CLICK_IDS: &[&str] = &[
    "gclid",
    "gbraid",
    "wbraid",
    "dclid",
    "fbclid",
    "msclkid",
    "ttclid",
    "twclid",
    "li_fat_id",
    "yclid",
    "epik",
    "rdt_cid",
];

/// Hosts by class; a host matches an entry equal to it or to one of its parent domains. Entries
/// ending in `.` match any top-level domain (`google.` matches `google.de` and `google.co.uk`).
const SEARCH: &[&str] = &[
    "google.",
    "bing.com",
    "duckduckgo.com",
    "search.yahoo.com",
    "yahoo.co.jp",
    "baidu.com",
    "yandex.",
    "ecosia.org",
    "search.brave.com",
    "startpage.com",
    "qwant.com",
    "naver.com",
    "seznam.cz",
    "ask.com",
    "aol.com",
    "kagi.com",
    "perplexity.ai",
    "sogou.com",
    "so.com",
];
const SOCIAL: &[&str] = &[
    "facebook.com",
    "fb.com",
    "m.facebook.com",
    "l.facebook.com",
    "instagram.com",
    "t.co",
    "twitter.com",
    "x.com",
    "linkedin.com",
    "lnkd.in",
    "reddit.com",
    "pinterest.",
    "tiktok.com",
    "youtube.com",
    "youtu.be",
    "news.ycombinator.com",
    "threads.net",
    "bsky.app",
    "mastodon.social",
    "vk.com",
    "weibo.com",
    "tumblr.com",
    "quora.com",
    "snapchat.com",
    "discord.com",
    "t.me",
    "telegram.org",
    "whatsapp.com",
    "wa.me",
    "stackoverflow.com",
];
const EMAIL: &[&str] = &[
    "mail.google.com",
    "inbox.google.com",
    "outlook.live.com",
    "outlook.office.com",
    "outlook.office365.com",
    "mail.yahoo.com",
    "mail.proton.me",
    "mail.aol.com",
    "mail.yandex.ru",
    "webmail.",
    "mail.",
    "com.google.android.gm",
    "gmx.net",
    "web.de",
    "fastmail.com",
    "icloud.com",
];

fn host_matches(host: &str, entry: &str) -> bool {
    if let Some(prefix) = entry.strip_suffix('.') {
        // `google.` : a label `google` followed by a public suffix of at most two labels.
        let labels = host.split('.').count();
        return host
            .split('.')
            .enumerate()
            .any(|(i, l)| l == prefix && (1..=2).contains(&(labels - i - 1)));
    }
    // `entry` itself, or a subdomain of it.
    host.strip_suffix(entry)
        .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
}

fn in_list(host: &str, list: &[&str]) -> bool {
    list.iter().any(|e| host_matches(host, e))
}

fn host_of(url: &str) -> Option<String> {
    host_of_url(&Url::parse(url).ok()?)
}

/// The host without `www.`, lowercase; an Android app's package for `android-app://` URLs.
pub fn host_of_url(parsed: &Url) -> Option<String> {
    if parsed.scheme() == "android-app" {
        // android-app://com.google.android.gm/ : the app's package is the "host".
        return parsed.host_str().map(str::to_ascii_lowercase);
    }
    let host = parsed.host_str()?.to_ascii_lowercase();
    Some(
        host.strip_prefix("www.")
            .map(str::to_string)
            .unwrap_or(host),
    )
}

/// Classifies `referer` against the page (`location`, parsed) and the site's own domains.
pub fn classify(
    referer: Option<&str>,
    location: Option<&Url>,
    internal_domains: &[String],
    medium: Option<&str>,
) -> Referrer {
    if medium.is_some_and(|m| m.eq_ignore_ascii_case("email")) {
        return Referrer {
            class: "email",
            host: referer.and_then(host_of),
        };
    }
    let Some(host) = referer.filter(|r| !r.is_empty()).and_then(host_of) else {
        return Referrer {
            class: "direct",
            host: None,
        };
    };
    let own = location.and_then(host_of_url);
    let internal = own.as_deref() == Some(host.as_str())
        || internal_domains
            .iter()
            .any(|d| host_matches(&host, &d.to_ascii_lowercase()));
    let class = if internal {
        "internal"
    } else if in_list(&host, EMAIL) {
        "email"
    } else if in_list(&host, SEARCH) {
        "search"
    } else if in_list(&host, SOCIAL) {
        "social"
    } else {
        "referral"
    };
    Referrer {
        class,
        host: Some(host),
    }
}

/// Reads UTM parameters and click ids from the page URL (`?` query, or the `#` fragment when
/// it is written like a query, as single-page apps do).
pub fn campaign(location: Option<&Url>) -> Campaign {
    let mut out = Campaign::default();
    let Some(url) = location else {
        return out;
    };
    let fragment_pairs = url
        .fragment()
        .and_then(|f| f.split_once('?').map(|(_, q)| q).or(Some(f)))
        .filter(|q| q.contains('='))
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let pairs = url.query_pairs().into_owned().chain(fragment_pairs);
    for (key, value) in pairs {
        if value.is_empty() {
            continue;
        }
        let slot = match key.to_ascii_lowercase().as_str() {
            "utm_source" => &mut out.source,
            "utm_medium" => &mut out.medium,
            "utm_campaign" => &mut out.campaign,
            "utm_term" => &mut out.term,
            "utm_content" => &mut out.content,
            k if CLICK_IDS.contains(&k) => {
                if out.click_id.is_none() {
                    out.click_id = Some(value);
                    out.click_id_type = Some(k.to_string());
                }
                continue;
            }
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn class(referer: &str) -> &'static str {
        classify(
            Some(referer),
            Some(&url("https://shop.example/cart")),
            &["example.org".into()],
            None,
        )
        .class
    }

    #[test]
    fn classifies_referrers() {
        assert_eq!(class("https://www.google.com/search?q=shoes"), "search");
        assert_eq!(class("https://www.google.co.uk/"), "search");
        assert_eq!(class("https://duckduckgo.com/"), "search");
        assert_eq!(class("https://t.co/abc"), "social");
        assert_eq!(class("https://old.reddit.com/r/rust"), "social");
        assert_eq!(class("https://mail.google.com/mail/u/0/"), "email");
        assert_eq!(class("android-app://com.google.android.gm/"), "email");
        assert_eq!(class("https://shop.example/p/1"), "internal");
        assert_eq!(class("https://blog.example.org/post"), "internal");
        assert_eq!(class("https://someblog.net/review"), "referral");
        assert_eq!(class("https://googleapis.evil.net/"), "referral");
        assert_eq!(classify(None, None, &[], None).class, "direct");
        assert_eq!(classify(Some(""), None, &[], None).class, "direct");
        assert_eq!(classify(Some("not a url"), None, &[], None).class, "direct");
        let r = classify(Some("https://news.example/"), None, &[], Some("Email"));
        assert_eq!(
            (r.class, r.host.as_deref()),
            ("email", Some("news.example"))
        );
    }

    #[test]
    fn extracts_utm_and_click_ids() {
        let c = campaign(Some(&url(
            "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=bf%202026&gclid=abc&fbclid=zzz",
        )));
        assert_eq!(c.source.as_deref(), Some("newsletter"));
        assert_eq!(c.medium.as_deref(), Some("email"));
        assert_eq!(c.campaign.as_deref(), Some("bf 2026"));
        assert_eq!(c.term, None);
        assert_eq!(
            (c.click_id.as_deref(), c.click_id_type.as_deref()),
            (Some("abc"), Some("gclid"))
        );
        let spa = campaign(Some(&url(
            "https://app.example/#/landing?utm_source=ads&utm_term=red+shoes",
        )));
        assert_eq!(spa.source.as_deref(), Some("ads"));
        assert_eq!(spa.term.as_deref(), Some("red shoes"));
        assert_eq!(
            campaign(Some(&url("https://app.example/#section"))),
            Campaign::default()
        );
        assert_eq!(campaign(None), Campaign::default());
    }
}
