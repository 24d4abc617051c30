//! Bot and automation flags: the tracker's `navigator.webdriver` hint, headless browsers,
//! crawlers the user-agent rules know, and user agents of crawlers, monitors and HTTP
//! libraries matched by name.

use std::sync::LazyLock;

use regex::Regex;

use super::ua::UserAgent;

/// Words and product tokens of automated clients, matched case-insensitively anywhere in the
/// user agent.
static AUTOMATED: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)bot\b|bot/|crawl|spider|slurp|scrap|archiver|fetcher|headless|phantomjs|",
        r"selenium|webdriver|puppeteer|playwright|cypress|lighthouse|pingdom|uptime|",
        r"monitor|statuscake|curl/|wget/|httpie|python-requests|python-urllib|aiohttp|",
        r"httpx|go-http-client|java/|okhttp|axios/|node-fetch|undici|libwww-perl|",
        r"apache-httpclient|facebookexternalhit|embedly|bingpreview|mediapartners|",
        r"adsbot|google-inspectiontool|googleother|feedburner|validator|",
        r"gptbot|claudebot|ccbot|perplexity|bytespider|petalbot|ahrefs|semrush|mj12|",
        r"yandex|baiduspider|duckduckbot|applebot|amazonbot|preview"
    ))
    .ok()
});

/// Why a user agent looks automated (computed once per distinct user agent and cached).
pub fn from_user_agent(ua: &str, parsed: &UserAgent) -> Option<&'static str> {
    if ua.trim().is_empty() {
        return Some("no user agent");
    }
    if ua.contains("HeadlessChrome") || ua.contains("Headless") {
        return Some("headless browser");
    }
    if parsed.device_category == "robot" {
        return Some("known crawler");
    }
    match &*AUTOMATED {
        Some(re) if re.is_match(ua) => Some("automated user agent"),
        _ => None,
    }
}

/// Why the request looks automated, or `None` when it looks like a person's browser.
pub fn reason(parsed: Option<&UserAgent>, webdriver: bool) -> Option<&'static str> {
    if webdriver {
        return Some("webdriver");
    }
    match parsed {
        None => Some("no user agent"),
        Some(p) => p.bot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_automation_and_leaves_browsers_alone() {
        let browsers = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        ];
        let plain = UserAgent::default();
        for ua in browsers {
            assert_eq!(from_user_agent(ua, &plain), None, "{ua}");
        }
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
                "headless browser",
            ),
            (
                "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
                "automated user agent",
            ),
            ("curl/8.5.0", "automated user agent"),
            ("python-requests/2.32.3", "automated user agent"),
            (
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
                "automated user agent",
            ),
            ("", "no user agent"),
        ];
        for (ua, why) in cases {
            assert_eq!(from_user_agent(ua, &plain), Some(why), "{ua}");
        }
        let crawler = UserAgent {
            device_category: "robot",
            ..UserAgent::default()
        };
        assert_eq!(
            from_user_agent("SomeNewCrawler", &crawler),
            Some("known crawler")
        );
        assert_eq!(reason(None, false), Some("no user agent"));
        assert_eq!(reason(Some(&plain), true), Some("webdriver"));
        assert_eq!(reason(Some(&plain), false), None);
    }
}
