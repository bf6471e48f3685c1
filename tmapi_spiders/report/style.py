"""The report page's style sheet, inlined into every report (`page.render`).

Kept apart from the markup and the script so each reads as what it is: this module is the
look of the page (cards, image sections, badges, the narrow-screen layout), nothing else.
"""

CSS = """
:root { --bg: #f5f6f8; --card: #fff; --ink: #1d2330; --muted: #5b6472; --line: #dde1e7;
  --accent: #d9480f; --focus: #1c64f2; color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC", sans-serif; }
a { color: #1a4fb8; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -9999px; top: 0; background: #fff; padding: .5em 1em; z-index: 10; }
.skip:focus { left: 1em; }
.top { background: #fff; border-bottom: 1px solid var(--line); padding: 1rem clamp(.75rem, 3vw, 2rem) .5rem; }
h1 { font-size: 1.35rem; margin: 0 0 .5rem; overflow-wrap: anywhere; }
.run { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; margin: 0 0 .75rem; color: var(--muted); font-size: .9rem; }
.run div { display: flex; gap: .35em; }
.run dt { margin: 0; } .run dd { margin: 0; color: var(--ink); font-weight: 600; }
.run dl { display: contents; }
.controls { display: flex; flex-wrap: wrap; gap: .6rem 1.25rem; align-items: flex-end; }
.field { display: flex; flex-direction: column; gap: .15rem; font-size: .85rem; color: var(--muted); }
.field.price-range { flex-direction: row; align-items: center; gap: .4rem; flex-wrap: wrap; }
.field.price-range input { width: 6.5em; }
select, input, button { font: inherit; font-size: .95rem; color: var(--ink); }
select, input { padding: .35rem .5rem; border: 1px solid #b8bfca; border-radius: 6px; background: #fff; }
input[type=search] { width: 15em; max-width: 100%; }
button { padding: .35rem .8rem; border: 1px solid #b8bfca; border-radius: 6px; background: #f3f4f6; cursor: pointer; }
button:hover { background: #e7e9ee; }
.badges { border: 0; padding: 0; margin: 0; display: flex; flex-direction: column;
  font-size: .85rem; color: var(--muted); }
.badges legend { padding: 0; margin-bottom: .15rem; }
#badge-boxes { display: flex; flex-wrap: wrap; gap: .15rem .8rem; color: var(--ink); font-size: .9rem; }
#badge-boxes label { display: flex; gap: .3em; align-items: center; }
.buttons { display: flex; gap: .5rem; flex-wrap: wrap; }
.status { margin: .6rem 0 0; font-size: .9rem; color: var(--muted); }
main { padding: 1rem clamp(.5rem, 3vw, 2rem); outline: none; }
.image { background: #fff; border: 1px solid var(--line); border-radius: 12px; margin: 0 0 1.25rem; padding: 1rem; }
.image-head { display: flex; gap: 1rem; align-items: flex-start; }
.photo { flex: 0 0 128px; margin: 0; }
.photo .frame { width: 128px; height: 128px; border-radius: 8px; overflow: hidden; position: relative;
  background: repeating-linear-gradient(45deg, #eef0f4 0 10px, #e6e9ef 10px 20px); }
.photo .frame::before { content: "photo not shown"; position: absolute; inset: 0; display: grid; place-items: center;
  color: var(--muted); font-size: .75rem; text-align: center; }
.photo img, .thumb img { position: absolute; inset: 0; width: 100%; height: 100%; object-fit: cover; background: #fff; }
.photo figcaption { font-size: .72rem; color: var(--muted); overflow-wrap: anywhere; margin-top: .3rem; }
.image-info { flex: 1; min-width: 0; }
.image-info h2 { font-size: 1.1rem; margin: 0 0 .35rem; display: flex; gap: .5rem; align-items: center;
  flex-wrap: wrap; }
.state { font-size: .75rem; font-weight: 600; padding: .05rem .5rem; border-radius: 999px;
  background: #e6f4ea; color: #1e6b34; }
.state.failed { background: #fdecea; color: #a61b1b; }
.state.unfinished { background: #fff4e0; color: #8a5300; }
.input-cols { display: flex; flex-wrap: wrap; gap: .2rem 1.1rem; margin: 0 0 .4rem; font-size: .9rem; }
.input-cols div { display: flex; gap: .3em; } .input-cols dt { color: var(--muted); } .input-cols dd { margin: 0; }
.suppliers { margin: .5rem 1rem; } .suppliers summary { cursor: pointer; font-weight: 600; }
.supplier-table { border-collapse: collapse; font-size: .9rem; width: 100%; }
.supplier-table th, .supplier-table td { text-align: left; padding: .25rem .5rem; vertical-align: top;
  border-bottom: 1px solid #ddd; }
.counts { display: flex; flex-wrap: wrap; gap: .2rem 1.1rem; margin: 0 0 .4rem; font-size: .9rem; }
.counts div { display: flex; gap: .3em; }
.counts dt { color: var(--muted); } .counts dd { margin: 0; font-weight: 600; }
.note { font-size: .8rem; color: var(--muted); margin: .1rem 0; overflow-wrap: anywhere; }
.failures { margin: .2rem 0 .4rem; padding-left: 1.2rem; color: #a61b1b; font-size: .85rem; overflow-wrap: anywhere; }
.toggle { margin-top: .2rem; }
.cards { list-style: none; margin: 1rem 0 0; padding: 0; display: grid; gap: .9rem;
  grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); }
.cards[hidden] { display: none; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; overflow: hidden;
  display: flex; flex-direction: column; position: relative; }
.card:hover { box-shadow: 0 3px 12px rgba(20, 30, 50, .12); }
.thumb { position: relative; aspect-ratio: 1 / 1; background: linear-gradient(135deg, #f0f2f6, #e2e6ed); }
.thumb::before { content: "no image"; position: absolute; inset: 0; display: grid; place-items: center;
  color: #8a93a1; font-size: .8rem; }
.rank { position: absolute; top: .4rem; left: .4rem; background: rgba(20, 25, 35, .72); color: #fff;
  font-size: .72rem; padding: .05rem .45rem; border-radius: 999px; z-index: 1; }
.body { padding: .6rem .7rem .7rem; display: flex; flex-direction: column; gap: .25rem; flex: 1; }
.card h3 { font-size: .92rem; font-weight: 600; margin: 0; line-height: 1.3; overflow-wrap: anywhere; }
.card h3 a { color: var(--ink); text-decoration: none; }
.card h3 a:hover { text-decoration: underline; color: #1a4fb8; }
.card h3 a::after { content: ""; position: absolute; inset: 0; }
.orig { display: none; font-size: .8rem; color: var(--muted); margin: 0; }
.card:hover .orig, .card:focus-within .orig { display: block; }
.price { color: var(--accent); font-weight: 700; font-size: 1.05rem; margin: 0; }
.tiers { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .1rem .6rem;
  font-size: .75rem; color: var(--muted); }
.facts, .supplier, .where { margin: 0; font-size: .8rem; color: var(--muted); overflow-wrap: anywhere; }
.supplier { color: var(--ink); }
.tags { list-style: none; margin: auto 0 0; padding: .3rem 0 0; display: flex; flex-wrap: wrap; gap: .25rem; }
.tag { font-size: .7rem; padding: .05rem .45rem; border-radius: 999px; border: 1px solid; }
.tag-factory { color: #7a3e00; background: #fff3e0; border-color: #ffd8a8; }
.tag-verified { color: #0b5c2e; background: #e8f7ee; border-color: #b7e4c7; }
.tag-dropshipping { color: #3b2f8f; background: #efedff; border-color: #d0c9ff; }
.tag-free-shipping { color: #0b4f71; background: #e6f4fb; border-color: #b3dcf0; }
.tag-new { color: #8f1d4f; background: #fdebf3; border-color: #f5bdd6; }
.more { margin-top: .8rem; }
.empty { color: var(--muted); font-size: .9rem; margin: .8rem 0 0; }
.more-images { padding: 0 clamp(.5rem, 3vw, 2rem) 2rem; text-align: center; }
.noscript { padding: 1rem 2rem; }
@media (max-width: 600px) {
  body { font-size: 14px; }
  .image { padding: .7rem; }
  .photo { flex-basis: 88px; } .photo .frame { width: 88px; height: 88px; }
  .cards { grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: .6rem; }
  input[type=search] { width: 100%; }
  .field { flex: 1 1 100%; }
}
"""
