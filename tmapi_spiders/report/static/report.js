(function () {
  'use strict';
  // Offer row positions: the same numbers as O_* in tmapi_spiders/report/offers.py.
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
  // Undo page.py's `pack`: suppliers and places from the block's string table.
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

  // --- rendering -----------------------------------------------------------------------------
  function card(img, o) {
    var li = el('li', 'card');
    if (o[O_RANK] !== null) li.dataset.rank = String(o[O_RANK]);
    var thumb = el('div', 'thumb');
    if (o[O_RANK] !== null) thumb.appendChild(el('span', 'rank', '#' + o[O_RANK]));
    var src = imageUrl(o);
    if (src) {
      var pic = el('img');
      pic.alt = 'Photo of ' + (o[O_TITLE] || 'offer ' + o[O_ID]);
      pic.loading = 'lazy';
      pic.decoding = 'async';
      pic.referrerPolicy = 'no-referrer';
      pic.addEventListener('error', hideBroken);
      pic.src = src;
      thumb.appendChild(pic);
    }
    li.appendChild(thumb);
    var body = el('div', 'body');
    var h = el('h3');
    var href = offerUrl(o);
    var name = o[O_TITLE] || o[O_ORIGIN] || 'Offer ' + o[O_ID];
    var link = el(href ? 'a' : 'span', null, name);
    if (href) {
      link.href = href;
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
    }
    if (o[O_ORIGIN]) link.title = o[O_ORIGIN];
    if (img.l) h.lang = img.l;
    h.appendChild(link);
    body.appendChild(h);
    if (o[O_ORIGIN] && o[O_ORIGIN] !== name) {
      var orig = el('p', 'orig', o[O_ORIGIN]);
      orig.lang = 'zh';
      body.appendChild(orig);
    }
    var price = o[O_PMIN] === null ? 'price not given'
      : o[O_PMIN] === o[O_PMAX] ? yuan(o[O_PMIN]) : yuan(o[O_PMIN]) + ' \u2013 ' + yuan(o[O_PMAX]);
    body.appendChild(el('p', 'price', price));
    if (o[O_TIERS].length > 1) {
      var tiers = el('ul', 'tiers');
      tiers.setAttribute('aria-label', 'Price by quantity');
      o[O_TIERS].forEach(function (t) {
        var range = t[1] ? t[0] + '\u2013' + t[1] : '\u2265' + t[0];
        var p = num(t[2]);
        tiers.appendChild(el('li', null, range + ': ' + (p === null ? t[2] : yuan(p))));
      });
      body.appendChild(tiers);
    }
    var facts = [];
    if (o[O_MOQ] !== null) facts.push('MOQ ' + ints.format(o[O_MOQ]));
    if (o[O_SOLD] !== null) facts.push(ints.format(o[O_SOLD]) + ' sold');
    if (o[O_ORDERS]) facts.push(ints.format(o[O_ORDERS]) + (o[O_ORDERS] === 1 ? ' order' : ' orders'));
    if (o[O_REPURCHASE]) facts.push(o[O_REPURCHASE] + ' repurchase');
    if (facts.length) body.appendChild(el('p', 'facts', facts.join(' \u00b7 ')));
    if (o[O_SUPPLIER]) body.appendChild(el('p', 'supplier', o[O_SUPPLIER]));
    var where = [];
    if (o[O_YEARS]) where.push(o[O_YEARS] + (o[O_YEARS] === 1 ? ' year' : ' years'));
    if (o[O_LOCATION]) where.push(o[O_LOCATION]);
    if (where.length) body.appendChild(el('p', 'where', where.join(' \u00b7 ')));
    var tags = BADGES.filter(function (b) { return o[O_BADGES] & b.bit; });
    if (tags.length) {
      var ul = el('ul', 'tags');
      ul.setAttribute('aria-label', 'Badges');
      tags.forEach(function (b) { ul.appendChild(el('li', 'tag tag-' + b.key, b.label)); });
      body.appendChild(ul);
    }
    li.appendChild(body);
    return li;
  }

  function showCards(k, list, more, upTo) {
    var img = images[k], view = views[k];
    var from = list.childElementCount, to = Math.min(view.length, upTo);
    var frag = document.createDocumentFragment();
    for (var i = from; i < to; i++) frag.appendChild(card(img, img.o[view[i]]));
    list.appendChild(frag);
    var left = view.length - to;
    more.hidden = left <= 0 || list.hidden;
    more.textContent = 'Show ' + Math.min(left, CARDS_MORE) + ' more offers (' + ints.format(left) + ' left)';
  }

  function count(dl, label, value) {
    var d = el('div');
    d.appendChild(el('dt', null, label));
    d.appendChild(el('dd', null, value));
    dl.appendChild(d);
  }

  function section(k) {
    var img = images[k], view = views[k];
    var sec = el('section', 'image');
    sec.id = 'image-' + (k + 1);
    sec.dataset.image = String(k + 1);
    sec.setAttribute('aria-labelledby', 'image-h-' + k);
    var head = el('div', 'image-head');
    var fig = el('figure', 'photo');
    var frame = el('div', 'frame');
    var src = safeUrl(img.safe);
    if (src) {
      var pic = el('img');
      pic.alt = 'Query photo ' + (k + 1);
      pic.loading = 'lazy';
      pic.decoding = 'async';
      pic.referrerPolicy = 'no-referrer';
      pic.addEventListener('error', hideBroken);
      pic.src = src;
      frame.appendChild(pic);
    }
    fig.appendChild(frame);
    fig.appendChild(el('figcaption', null, img.u || '(no query image URL)'));
    head.appendChild(fig);

    var info = el('div', 'image-info');
    var h = el('h2', null, 'Image ' + (k + 1));
    h.id = 'image-h-' + k;
    var st = img.status;
    if (st) h.appendChild(el('span', 'state ' + (st === 'done' || st === 'failed' ? st : 'unfinished'), st));
    info.appendChild(h);
    if (img.in && img.in.length) {
      // The seed spreadsheet's row: what this photo is in the buyer's own list.
      var cols = el('dl', 'input-cols');
      cols.setAttribute('aria-label', 'Your sheet' + (img.row ? ', row ' + img.row : ''));
      if (img.row) count(cols, 'Row', ints.format(img.row));
      img.in.forEach(function (c) { count(cols, c[0], c[1]); });
      info.appendChild(cols);
    }
    var dl = el('dl', 'counts');
    var offers = ints.format(img.o.length);
    if (filtering()) offers = ints.format(view.length) + ' of ' + offers;
    if (img.found > img.o.length) offers += ' (top of ' + ints.format(img.found) + ')';
    count(dl, 'Offers', offers);
    if (img.total !== null && img.total !== undefined) count(dl, 'Found by the API', ints.format(img.total));
    count(dl, 'Pages', ints.format(img.pages));
    count(dl, 'Paid calls', ints.format(img.calls));
    count(dl, 'Failures', ints.format(img.failures));
    info.appendChild(dl);
    if (img.s) info.appendChild(el('p', 'note', 'Searched as (converted): ' + img.s));
    if (img.reason || img.fm.length) {
      var fl = el('ul', 'failures');
      fl.setAttribute('aria-label', 'Failures');
      if (img.reason) fl.appendChild(el('li', null, img.reason));
      img.fm.forEach(function (m) { if (m !== img.reason) fl.appendChild(el('li', null, m)); });
      info.appendChild(fl);
    }
    var toggle = el('button', 'toggle');
    toggle.type = 'button';
    toggle.setAttribute('aria-controls', 'cards-' + k);
    info.appendChild(toggle);
    head.appendChild(info);
    sec.appendChild(head);

    var list = el('ul', 'cards');
    list.id = 'cards-' + k;
    list.setAttribute('aria-label', 'Offers for image ' + (k + 1));
    var more = el('button', 'more');
    more.type = 'button';
    var empty = el('p', 'empty', img.o.length ? 'No offer of this image matches the filters.' : 'No offers.');
    empty.hidden = view.length > 0;
    sec.appendChild(list);
    sec.appendChild(empty);
    sec.appendChild(more);
    function setCollapsed(yes) {
      list.hidden = yes;
      toggle.setAttribute('aria-expanded', String(!yes));
      toggle.textContent = (yes ? 'Show' : 'Hide') + ' offers';
      if (yes) { collapsed.add(k); more.hidden = true; } else {
        collapsed.delete(k);
        showCards(k, list, more, Math.max(list.childElementCount, CARDS_FIRST));
      }
    }
    toggle.addEventListener('click', function () { setCollapsed(!collapsed.has(k)); });
    more.addEventListener('click', function () { showCards(k, list, more, list.childElementCount + CARDS_MORE); });
    sec.setCollapsed = setCollapsed;
    toggle.hidden = view.length === 0;
    setCollapsed(collapsed.has(k));
    return sec;
  }

  var moreButton = el('button', 'more-images-button');
  moreButton.type = 'button';
  moreButton.addEventListener('click', function () { appendImages(); });
  moreImages.appendChild(moreButton);

  function appendImages() {
    var end = Math.min(order.length, rendered + IMAGES_AT_ONCE);
    var frag = document.createDocumentFragment();
    for (; rendered < end; rendered++) frag.appendChild(section(order[rendered]));
    main.appendChild(frag);
    updateMoreButton();
  }
  function updateMoreButton() {
    var left = order.length - rendered;
    moreButton.hidden = left <= 0;
    moreButton.textContent = 'Show more images (' + ints.format(left) + ' left)';
  }

  function updateStatus() {
    var shown = 0, all = 0;
    for (var k = 0; k < images.length; k++) { shown += views[k].length; all += images[k].o.length; }
    var text = filtering()
      ? ints.format(shown) + ' of ' + ints.format(all) + ' offers match, for ' + ints.format(order.length) + ' of '
        + ints.format(images.length) + ' images.'
      : ints.format(all) + ' offers for ' + ints.format(images.length) + ' images.';
    document.getElementById('status').textContent = text;
  }

  function render() {
    main.textContent = '';
    rendered = 0;
    appendImages();
    updateStatus();
  }
  function apply() {
    compute();
    timing.computed = timing.computed || performance.now();
    render();
  }

  function runHeader() {
    var run = data.run || {}, t = run.totals || {};
    var dl = el('dl');
    function add(label, value) { if (value !== undefined && value !== null && value !== '') count(dl, label, value); }
    add('Source', data.source);
    add('Spider', run.spider);
    add('Finish reason', run.finish_reason);
    add('Started', run.started_at);
    add('Finished', run.finished_at);
    if (t.images !== undefined) {
      var parts = [ints.format(t.images)];
      if (t.images_done !== undefined) {
        parts.push('(' + ints.format(t.images_done) + ' done, ' + ints.format(t.images_failed || 0) + ' failed, '
          + ints.format(t.images_unfinished || 0) + ' unfinished)');
      }
      add('Images', parts.join(' '));
    }
    function n(v) { return v === undefined || v === null ? null : ints.format(v); }
    add('Offers', n(t.items_written !== undefined ? t.items_written : t.items));
    add('Pages', n(t.pages_fetched !== undefined ? t.pages_fetched : t.pages));
    add('Paid calls', n(t.paid_calls));
    add('Cached answers', t.cached_answers ? ints.format(t.cached_answers) : null);
    add('Duplicates dropped', t.duplicates ? ints.format(t.duplicates) : null);
    add('Failure records', ints.format(data.failures || 0));
    add('Call cap', run.max_calls);
    add('Job', run.job);
    if (data.currency) add('Currency', data.currency.code + ' at ' + data.currency.rate + ' per CNY (the rate given)');
    if (data.top) add('Kept per image', 'top ' + ints.format(data.top));
    add('Report built', data.generated);
    document.getElementById('run').appendChild(dl);
  }

  // The suppliers view: who has an offer for the most of the products (sourcing.rank_suppliers,
  // computed when the report was built, within the choice's filters), each product a link to its image.
  function suppliersView() {
    var sup = data.suppliers || {rows: [], all: 0, products: 0};
    document.getElementById('suppliers-summary').textContent = 'Suppliers: who could supply most of the list ('
      + ints.format(sup.all) + ' suppliers, ' + ints.format(sup.products) + ' products)';
    var body = document.getElementById('suppliers-body');
    body.appendChild(el('p', 'note', 'Offers counted: ' + (sup.filters || 'all of them')
      + '. Ranked by products matched, then by the sum of their lowest prices.'));
    if (!sup.rows.length) { body.appendChild(el('p', 'empty', 'No supplier.')); return; }
    var table = el('table', 'supplier-table');
    var head = el('tr');
    ['#', 'Supplier', 'Products', 'Its lowest price for each', 'Badges', 'Years', 'Location'].forEach(function (t) {
      var th = el('th', null, t);
      th.scope = 'col';
      head.appendChild(th);
    });
    var thead = el('thead');
    thead.appendChild(head);
    table.appendChild(thead);
    var tbody = el('tbody');
    sup.rows.forEach(function (s, i) {
      var tr = el('tr');
      tr.dataset.supplier = s.id;
      tr.appendChild(el('td', null, String(i + 1)));
      tr.appendChild(el('td', null, s.n || s.id));
      tr.appendChild(el('td', 'matched', ints.format(s.p.length) + ' of ' + ints.format(sup.products)));
      var list = el('td', 'products');
      s.p.forEach(function (p, j) {
        if (j) list.appendChild(document.createTextNode(', '));
        var a = el('a', null, 'Image ' + p[0]);
        a.href = '#image-' + p[0];
        a.addEventListener('click', function (e) {
          var sec = document.getElementById('image-' + p[0]);
          while (!sec && rendered < order.length) { appendImages(); sec = document.getElementById('image-' + p[0]); }
          if (sec) { e.preventDefault(); sec.scrollIntoView(); }
        });
        list.appendChild(a);
        var u = safeUrl(p[2]);
        var price = el(u ? 'a' : 'span', 'price', p[1] === null ? '?' : yuan(p[1]));
        if (u) { price.href = u; price.target = '_blank'; price.rel = 'noopener noreferrer'; }
        list.appendChild(document.createTextNode(' '));
        list.appendChild(price);
      });
      tr.appendChild(list);
      tr.appendChild(el('td', null, BADGES.filter(function (b) { return s.b & b.bit; })
        .map(function (b) { return b.label; }).join(', ')));
      tr.appendChild(el('td', null, s.y === null || s.y === undefined ? '' : String(s.y)));
      tr.appendChild(el('td', null, s.loc || ''));
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    body.appendChild(table);
    if (sup.all > sup.rows.length) {
      body.appendChild(el('p', 'note', 'The first ' + ints.format(sup.rows.length) + ' of ' + ints.format(sup.all)
        + ' suppliers.'));
    }
  }

  function badgeBoxes() {
    var box = document.getElementById('badge-boxes');
    BADGES.forEach(function (b) {
      var label = el('label');
      var input = el('input');
      input.type = 'checkbox';
      input.id = 'badge-' + b.key;
      input.name = 'badge';
      input.value = b.key;
      label.appendChild(input);
      label.appendChild(document.createTextNode(b.label));
      box.appendChild(label);
    });
  }

  var typing = 0;
  function onControls(event) {
    var delay = event && event.target && (event.target.id === 'q' || event.target.type === 'number') ? 200 : 0;
    clearTimeout(typing);
    typing = setTimeout(function () { readControls(); writeHash(); apply(); }, delay);
  }

  runHeader();
  suppliersView();
  badgeBoxes();
  readHash();
  syncControls();
  apply();
  form.addEventListener('change', onControls);
  form.addEventListener('input', onControls);
  form.addEventListener('submit', function (e) { e.preventDefault(); onControls(); });
  form.addEventListener('reset', function () { setTimeout(onControls, 0); });
  window.addEventListener('hashchange', function () { readHash(); syncControls(); apply(); });
  document.getElementById('collapse-all').addEventListener('click', function () {
    images.forEach(function (_, k) { collapsed.add(k); });
    main.querySelectorAll('section.image').forEach(function (s) { s.setCollapsed(true); });
  });
  document.getElementById('expand-all').addEventListener('click', function () {
    collapsed.clear();
    main.querySelectorAll('section.image').forEach(function (s) { s.setCollapsed(false); });
  });
  // Near the end of the page: the next few images (again while the end stays in view).
  function fill() {
    if (rendered < order.length && moreImages.getBoundingClientRect().top < window.innerHeight + 600) {
      appendImages();
      requestAnimationFrame(fill);
    }
  }
  if ('IntersectionObserver' in window) {
    new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) fill();
    }, {rootMargin: '600px'}).observe(moreImages);
  }
  // The second data block (every image after the first few), parsed once the first cards are up.
  window.reportRest = function () {
    var block = JSON.parse(document.getElementById('report-rest').textContent);
    var first = images.length;
    prepare(block).forEach(function (img) { images.push(img); });
    compute(first);
    updateMoreButton();
    updateStatus();
    fill();
    timing.rest = performance.now();
    document.documentElement.setAttribute('data-ready', '1');
  };
  window.reportReady = timing.ready = performance.now();
  window.reportTiming = timing;
})();
