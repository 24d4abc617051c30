/*
 * Eddy's tracker: Divolte's wire protocol with delivery that survives page unloads.
 *
 * Served as /eddy.js and /divolte.js; the collector fills in __EDDY_CONFIG__ and serves the
 * minified build (tracker/eddy.min.js, made by scripts/build-tracker). Exposes window.eddy
 * and window.divolte: partyId, sessionId, pageViewId, isNewPartyId, isFirstInSession,
 * isServerPageView, signal(type, params) and whenCommitted(callback, timeoutMs).
 *
 * Events are query strings with Divolte's parameters and checksum. They wait in a queue
 * (kept in localStorage and capped, unless cookieless) and go out in order: batched in a
 * keep-alive POST, or one GET pixel each where fetch is missing. A failed send is retried
 * with backoff; what is not in flight when the page hides goes by sendBeacon.
 *
 * Config (C): e endpoint path, p/s party and session cookie names, pt/st their lifetimes in
 * seconds, d cookie domain, ss SameSite, sec Secure, a automatic page views, c cookieless,
 * q queue cap.
 */
(function (w, d, C) {
  if (w.eddy) return;
  var nav = navigator, loc = location, M = Math, now = Date.now,
    src = d.currentScript.src,
    cut = src.indexOf('#') + 1 || src.length + 1,
    serverPageView = src.slice(cut),
    endpoint = src.slice(0, src.lastIndexOf('/', cut) + 1) + C.e,
    loadTime = now(),
    store = !C.c && w.localStorage,
    cookie = (name) => !C.c && (d.cookie.match('(?:^|; )' + name + '=([^;]*)') || [])[1],
    setCookie = (name, value, seconds) => C.c || (d.cookie = name + '=' + value + '; path=/; max-age=' +
      seconds + (C.d ? '; domain=' + C.d : '') + '; SameSite=' + C.ss + (C.sec ? '; Secure' : '')),
    // 0:<load time, base 36>:<32 random characters>; page-view ids have no time.
    newId = (timed) => '0:' + (timed ? loadTime.toString(36) + ':' : '') +
      btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24)))).replace(/[+/]/g, (c) => c > '+' ? '_' : '~'),
    mix = (k) => M.imul((k = M.imul(k, 0xcc9e2d51)) << 15 | k >>> 17, 0x1b873593),
    // MurmurHash3 (x86, 32 bits, seed 0) of the UTF-8 bytes of s: the event checksum.
    murmur3 = (s) => {
      s = unescape(encodeURIComponent(s));
      var n = s.length, h = 0, i = 0, k = 0, at = (j) => s.charCodeAt(j);
      for (; i + 4 <= n; i += 4) {
        h ^= mix(at(i) | at(i + 1) << 8 | at(i + 2) << 16 | at(i + 3) << 24);
        h = (h << 13 | h >>> 19) * 5 + 0xe6546b64 | 0;
      }
      if ((k = n & 3)) h ^= mix((k > 2 ? at(i + 2) << 16 : 0) | (k > 1 ? at(i + 1) << 8 : 0) | at(i));
      h ^= n;
      h = M.imul(h ^ h >>> 16, 0x85ebca6b);
      h = M.imul(h ^ h >>> 13, 0xc2b2ae35);
      return h ^ h >>> 16;
    },
    // Divolte's "mincode" of the custom parameters (numbers as JSON records).
    text = (s) => String(s).replace(/[~!]/g, '~$&') + '!',
    mincode = (v, name) => {
      var type = typeof v, head = name == null ? '' : text(name), out;
      if (v == null || type == 'number' && !isFinite(v)) return 'n' + head;
      if (v.toJSON) return mincode(v.toJSON(), name);
      if (type == 'boolean') return (v ? 't' : 'f') + head;
      if (type == 'number') return 'j' + head + v + '!';
      if (type == 'string') return 's' + head + text(v);
      if (Array.isArray(v)) return 'a' + head + v.map((x) => mincode(x)).join('') + '.';
      out = '(' + head;
      for (name in v) v.hasOwnProperty(name) && (out += mincode(v[name], name));
      return out + ')';
    },
    partyId = cookie(C.p),
    sessionId = cookie(C.s),
    newParty = !partyId,
    firstInSession = !sessionId,
    pageViewId,
    counter = 0,
    referrer = d.referrer,
    here = () => loc.pathname + loc.search + (/^#[!/]/.test(loc.hash) ? loc.hash : ''),
    page = here(),
    queue = [],
    committed = 0, // events acknowledged since the script loaded
    waiters = [],
    sending = 0, // events at the head of the queue in flight, or waiting to be retried
    flying = 0, // whether those are in flight (a failed send waits for its retry)
    backoff = 0,
    started = 0,
    // What a new page load will send again. While the page unloads, keep-alive requests in
    // flight finish without it, so only what they do not carry is kept; a failed send that
    // waits for its retry is kept (it may have arrived: at least once).
    save = (unloading) => { try { store.setItem('_dvq', JSON.stringify(queue.slice(unloading && flying ? sending : 0))); } catch (e) { /* no storage */ } },
    release = () => { waiters = waiters.filter((wt) => committed < wt[0] || wt[1]()); },
    delivered = (count, at) => {
      queue.splice(at, count);
      committed += count;
      save();
      release();
    },
    acknowledged = () => {
      var count = sending;
      sending = flying = backoff = 0;
      delivered(count, 0);
      flush();
    },
    failed = () => {
      flying = 0;
      setTimeout(() => { sending = 0; flush(); }, backoff = M.min(backoff * 2 || 1000, 60000));
    },
    flush = (unloading) => {
      var batch = [], size = 0, body, img;
      for (body of queue.slice(sending)) {
        if (size < 6e4) size += batch.push(body) && body.length + 1;
      }
      body = batch.join('\n');
      if (unloading) {
        // The page is going away: hand what is not in flight to the browser.
        batch.length && nav.sendBeacon && nav.sendBeacon(endpoint, body) && delivered(batch.length, sending);
        save(1);
      } else if (!batch.length || sending) {
        // Nothing to send, or a send in flight: its answer sends the rest.
      } else if (w.fetch) {
        sending = batch.length;
        flying = 1;
        fetch(endpoint, { method: 'POST', body: body, keepalive: size < 6e4 })
          .then((r) => r.ok ? acknowledged() : failed(), failed);
      } else {
        sending = flying = 1;
        img = new Image(1, 1);
        img.onload = acknowledged;
        img.onerror = failed;
        img.src = endpoint + '?' + batch[0];
      }
    },
    signal = (type, params) => {
      if (!type) return;
      // An event before the page view started (a hidden page) starts it.
      started++ || type == 'pageView' || pageView();
      var eventId = pageViewId + (counter++).toString(16), screen = w.screen, canonical = '', query = [],
        fields = { p: partyId, s: sessionId, v: pageViewId, e: eventId, c: now(), n: newParty ? 't' : 'f',
          f: firstInSession ? 't' : 'f', l: loc.href, r: referrer, i: screen.availWidth, j: screen.availHeight,
          k: w.devicePixelRatio, w: w.innerWidth, h: w.innerHeight, t: type,
          u: params === undefined ? '' : mincode(params), b: nav.webdriver ? 't' : '', z: C.c ? 't' : '' };
      Object.keys(fields).sort().forEach((name) => {
        var value = fields[name];
        value = value && value.toFixed ? value.toString(36) : value;
        if (value) {
          canonical += name + '=' + value + ',;';
          query.push(name + '=' + encodeURIComponent(value));
        }
      });
      query.push('x=' + murmur3(canonical).toString(36));
      newParty = firstInSession = false;
      setCookie(C.s, sessionId, C.st);
      setCookie(C.p, partyId, C.pt);
      queue.push(query.join('&'));
      // Capped: the oldest events that are not in flight give way.
      queue.length > C.q && delivered(queue.length - C.q, sending);
      save();
      flush();
      return eventId;
    },
    pageView = () => {
      exports.pageViewId = pageViewId;
      counter = 0;
      C.a && signal('pageView');
    },
    // A new page: pre-rendered and hidden pages start theirs when first shown (activating a
    // pre-rendered page makes it visible).
    start = () => d.prerendering || d.hidden || started++ || pageView(),
    // A single-page app moved: a new page view with the old page as referrer.
    navigated = () => {
      if (here() != page) {
        referrer = loc.origin + page;
        page = here();
        pageViewId = newId();
        pageView();
      }
    },
    exports = w.eddy = {
      partyId: partyId = partyId || newId(1),
      sessionId: sessionId = sessionId || newId(1),
      pageViewId: pageViewId = serverPageView || newId(),
      isNewPartyId: newParty,
      isFirstInSession: firstInSession,
      isServerPageView: !!serverPageView,
      signal: signal,
      // Calls back once every event signalled so far is acknowledged, or after the timeout.
      whenCommitted: (callback, timeout) => {
        var once = () => once.d || (once.d = 1, callback());
        waiters.push([committed + queue.length, once]);
        setTimeout(once, timeout || 1000);
        release();
      }
    },
    push = history.pushState,
    on = (target, type, listener) => target.addEventListener(type, listener);
  try { queue = JSON.parse(store.getItem('_dvq')) || []; } catch (e) { /* nothing kept */ }
  w.divolte = w.divolte || exports;
  history.pushState = function () {
    push.apply(this, arguments);
    navigated();
  };
  on(w, 'popstate', navigated);
  on(w, 'pageshow', (e) => e.persisted && (pageViewId = newId(), pageView()));
  on(w, 'pagehide', () => flush(1));
  on(d, 'visibilitychange', () => d.hidden ? flush(1) : start());
  start();
  flush();
})(window, document, __EDDY_CONFIG__);
