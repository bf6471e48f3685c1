"""The first half of the report page's script: its data, its state, filtering and sorting.

The page's script is one closure, split in two only so neither Python module is a wall of
JavaScript: `page.JS` is this text followed by `script_draw.DRAW`, byte for byte the script
the page always had. This half holds the offer-row positions (`offers.O_*`), the unpacking of
`page.pack`, the view's state kept in the URL fragment (#sort=price_up&badge=factory&q=..,
so a view can be bookmarked, shared and tested), and the filters and sort orders. Its
comments name `tmapi_spiders/report.py`, the module this package was: they are part of every
report's bytes, so they were left as they were.
"""

STATE = r"""
(function () {
  'use strict';
  // Offer row positions: the same numbers as O_* in tmapi_spiders/report.py.
  var O_ID = 0, O_URL = 1, O_TITLE = 2, O_ORIGIN = 3, O_IMG = 4, O_PMIN = 5, O_PMAX = 6, O_TIERS = 7,
    O_MOQ = 8, O_SOLD = 9, O_ORDERS = 10, O_REPURCHASE = 11, O_SUPPLIER = 12, O_YEARS = 13, O_LOCATION = 14,
    O_BADGES = 15, O_RANK = 16;
  var BADGES = [
    {bit: 1, key: 'factory', label: 'Factory'},
    {bit: 2, key: 'verified', label: 'Verified supplier'},
    {bit: 4, key: 'dropshipping', label: 'Dropshipping'},
    {bit: 8, key: 'free-shipping', label: 'Free shipping'},
    {bit: 16, key: 'new', label: 'New arrival'}
  ];
  var SORTS = ['rank', 'price_up', 'price_down', 'sales'];
  var IMAGES_AT_ONCE = 4, CARDS_FIRST = 12, CARDS_MORE = 24;

  var timing = {start: performance.now()};  // read by benchmarks/report_size.py
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var images = prepare(data);
  timing.parsed = performance.now();
  var state = {sort: 'rank', badges: 0, min: null, max: null, moq: null, q: ''};
  var defaults = data.defaults || {};  // the crawl's or command's choice: the filters a bare page opens with
  var views = [];          // per image: indexes of its offers that pass the filters, in display order
  var order = [];          // images to show, in order (all of them, or those with matches when filtering)
  var rendered = 0;        // images of `order` in the page
  var collapsed = new Set();
  var haystacks = [];      // per image, lazily: lower-cased searchable text per offer
  var ints = new Intl.NumberFormat('en');
  var money = new Intl.NumberFormat('en', {minimumFractionDigits: 2, maximumFractionDigits: 2});
  var main = document.getElementById('results');
  var moreImages = document.getElementById('more-images');
  var form = document.getElementById('controls');

  function el(tag, cls, txt) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (txt !== undefined && txt !== null) e.textContent = String(txt);
    return e;
  }
  function safeUrl(u) {
    if (typeof u !== 'string' || !u) return null;
    var p;
    try { p = new URL(u); } catch (e) { return null; }
    return (p.protocol === 'http:' || p.protocol === 'https:') && p.hostname ? p.href : null;
  }
  function offerUrl(o) {
    if (o[O_URL] === 0) return 'https://detail.1688.com/offer/' + encodeURIComponent(String(o[O_ID])) + '.html';
    return safeUrl(o[O_URL]);
  }
  // Undo report.py's `pack`: suppliers and places from the block's string table.
  function prepare(block) {
    var strings = block.strings || [];
    block.images.forEach(function (img) {
      img.o.forEach(function (o) {
        o[O_SUPPLIER] = strings[o[O_SUPPLIER]] || '';
        o[O_LOCATION] = strings[o[O_LOCATION]] || '';
      });
    });
    return block.images;
  }
  function imageUrl(o) {
    var u = o[O_IMG];
    return safeUrl(typeof u === 'string' && u.charAt(0) === '^' ? data.img_prefix + u.slice(1) : u);
  }
  // A thumbnail that cannot load (offline, gone) is hidden, and the placeholder under it shows.
  function hideBroken(event) { event.target.hidden = true; }
  // With a currency (-a currency=USD -a rate=...), each price also in it, at the rate given.
  var currency = data.currency || null;
  function yuan(n) {
    var cny = '\u00a5' + money.format(n);
    return currency ? cny + ' (' + currency.code + ' ' + money.format(n * currency.rate) + ')' : cny;
  }
  function num(v) {
    if (v === null || v === undefined || String(v).trim() === '') return null;
    var n = Number(v);
    return isFinite(n) ? n : null;
  }
  function filtering() {
    return state.badges !== 0 || state.min !== null || state.max !== null || state.moq !== null
      || state.q.trim() !== '';
  }

  // --- state <-> URL fragment <-> controls ---------------------------------------------------
  function readHash() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ''));
    if (!location.hash.replace(/^#/, '')) {
      state.sort = SORTS.indexOf(defaults.sort) >= 0 ? defaults.sort : 'rank';
      state.badges = defaults.badges || 0;
      state.min = null;
      state.max = num(defaults.max);
      state.moq = num(defaults.moq);
      state.q = '';
      return;
    }
    var s = p.get('sort');
    state.sort = SORTS.indexOf(s) >= 0 ? s : 'rank';
    state.badges = 0;
    (p.get('badge') || '').split(',').forEach(function (k) {
      BADGES.forEach(function (b) { if (b.key === k) state.badges |= b.bit; });
    });
    state.min = num(p.get('min'));
    state.max = num(p.get('max'));
    state.moq = num(p.get('moq'));
    state.q = p.get('q') || '';
  }
  function writeHash() {
    var p = [];
    function set(name, value) { p.push(name + '=' + encodeURIComponent(value).replace(/%2C/g, ',')); }
    if (state.sort !== 'rank') set('sort', state.sort);
    var keys = BADGES.filter(function (b) { return state.badges & b.bit; }).map(function (b) { return b.key; });
    if (keys.length) set('badge', keys.join(','));
    if (state.min !== null) set('min', String(state.min));
    if (state.max !== null) set('max', String(state.max));
    if (state.moq !== null) set('moq', String(state.moq));
    if (state.q) set('q', state.q);
    // With defaults, a page cleared of every filter says so (a bare page opens with the defaults).
    if (!p.length && (defaults.sort || defaults.badges || defaults.max || defaults.moq)) set('sort', state.sort);
    var hash = p.join('&');
    if (hash !== location.hash.replace(/^#/, '')) {
      history.replaceState(null, '', hash ? '#' + hash : location.pathname + location.search);
    }
  }
  function syncControls() {
    form.elements.sort.value = state.sort;
    form.elements.q.value = state.q;
    form.elements.min.value = state.min === null ? '' : String(state.min);
    form.elements.max.value = state.max === null ? '' : String(state.max);
    form.elements.moq.value = state.moq === null ? '' : String(state.moq);
    BADGES.forEach(function (b) { document.getElementById('badge-' + b.key).checked = !!(state.badges & b.bit); });
  }
  function readControls() {
    state.sort = SORTS.indexOf(form.elements.sort.value) >= 0 ? form.elements.sort.value : 'rank';
    state.q = form.elements.q.value;
    state.min = num(form.elements.min.value);
    state.max = num(form.elements.max.value);
    state.moq = num(form.elements.moq.value);
    state.badges = 0;
    BADGES.forEach(function (b) { if (document.getElementById('badge-' + b.key).checked) state.badges |= b.bit; });
  }

  // --- filtering and sorting -----------------------------------------------------------------
  function haystack(k) {
    if (!haystacks[k]) {
      haystacks[k] = images[k].o.map(function (o) {
        return (o[O_TITLE] + '\n' + o[O_ORIGIN] + '\n' + o[O_SUPPLIER] + '\n' + o[O_LOCATION]).toLowerCase();
      });
    }
    return haystacks[k];
  }
  function nullsLast(a, b, desc) {
    if (a === null && b === null) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    return desc ? b - a : a - b;
  }
  var COMPARE = {
    rank: function (a, b) { return nullsLast(a[O_RANK], b[O_RANK], false); },
    price_up: function (a, b) { return nullsLast(a[O_PMIN], b[O_PMIN], false); },
    price_down: function (a, b) { return nullsLast(a[O_PMAX], b[O_PMAX], true); },
    sales: function (a, b) { return nullsLast(a[O_SOLD], b[O_SOLD], true); }
  };
  function compute(from) {
    var words = state.q.trim().toLowerCase().split(/\s+/).filter(Boolean);
    var cmp = COMPARE[state.sort];
    if (!from) order = [];
    for (var k = from || 0; k < images.length; k++) {
      var offers = images[k].o, view = [], hay = words.length ? haystack(k) : null;
      for (var i = 0; i < offers.length; i++) {
        var o = offers[i];
        if ((o[O_BADGES] & state.badges) !== state.badges) continue;
        if (state.min !== null && (o[O_PMAX] === null || o[O_PMAX] < state.min)) continue;
        if (state.max !== null && (o[O_PMIN] === null || o[O_PMIN] > state.max)) continue;
        if (state.moq !== null && (o[O_MOQ] === null || o[O_MOQ] > state.moq)) continue;
        if (hay && !words.every(function (w) { return hay[i].indexOf(w) >= 0; })) continue;
        view.push(i);
      }
      if (state.sort !== 'rank') {
        view.sort(function (a, b) { return cmp(offers[a], offers[b]) || a - b; });
      }
      views[k] = view;
      if (view.length || !filtering()) order.push(k);
    }
  }

"""
