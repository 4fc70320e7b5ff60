// Search page: a small client of Pagefind's JS API (no Pagefind UI).
// The bundle is in pieces (one Pagefind index per year, under /pagefind/<piece>/),
// named by the manifest /pagefind/pieces.json. Each language has its own
// Pagefind instance (its stemming): a primary over the bundle's empty shell
// index at /pagefind/ (which holds the one copy of Pagefind's WebAssembly), into
// which the pieces holding that language are merged (mergeIndex) as a search
// needs them: all of them, or only the chosen year's. "All languages" asks
// every instance and merges the results by score. The year and topic choices
// come from the manifest.
const BASE = "/pagefind/";
const PAGE = 10;
const form = document.getElementById("search");
const field = (id) => document.getElementById(id);
const [q, kind, topic, year, language] = ["q", "kind", "topic", "year", "language"].map(field);
const status = field("status"), list = field("results"), pager = field("pager");
let loading = null, pieces = [], instances = {}, merged = {}, hits = [], page = 0, run = 0;
const wanted = new URLSearchParams(location.search);
// the page's own words (from the site's catalog), with {placeholders}
const plural = new Intl.PluralRules(document.documentElement.lang || "en");
function say(name, values = {}) {
  const text = status.dataset[name] || "";
  return text.replace(/\{(\w+)\}/g, (all, key) => (key in values ? String(values[key]) : all));
}

function instanceFor(pagefind, lang) {
  // Pagefind picks an instance's index (and stemmer) from <html lang> when it
  // is created; lend it the wanted language for that moment.
  const root = document.documentElement, own = root.getAttribute("lang");
  root.setAttribute("lang", lang);
  try { return pagefind.createInstance({ basePath: BASE }); }
  finally { root.setAttribute("lang", own); }
}

function fill(select, values, label) {
  const keep = select.value;
  select.replaceChildren(select.options[0]);
  for (const value of values) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label ? label(value) : value;
    select.append(option);
  }
  select.value = values.includes(keep) ? keep : "";
}

function choose(select) {
  // a choice from the address, once its option exists (then it is the reader's)
  const value = wanted.get(select.name);
  if (value && [...select.options].some((o) => o.value === value)) {
    select.value = value;
    wanted.delete(select.name);
  }
}

function load() {
  loading ??= (async () => {
    const manifest = await fetch(BASE + "pieces.json").then((r) => (r.ok ? r.json() : {}));
    pieces = manifest.pieces || [];
    const langs = [...new Set(pieces.flatMap((p) => p.languages))].sort();
    if (!langs.length) return; // nothing published yet: no bundle
    for (const [n, lang] of langs.entries()) {
      // Pagefind's WebAssembly glue is one per module (and per worker): each
      // language gets its own copy of the module, or their indexes would mix.
      const pagefind = await import(BASE + "pagefind.js" + (n ? "?" + encodeURIComponent(lang) : ""));
      instances[lang] = instanceFor(pagefind, lang);
      merged[lang] = {};
    }
    // created only now: Intl.DisplayNames loads locale data
    const names = new Intl.DisplayNames([document.documentElement.lang || "en"], { type: "language" });
    fill(language, langs, (l) => { try { return names.of(l); } catch { return l; } });
    fill(year, [...new Set(pieces.map((p) => p.year))].sort().reverse());
    // every topic, from the manifest: no piece's filters are read for the choices
    fill(topic, [...(manifest.topics || [])].sort((a, b) => a.localeCompare(b)));
    for (const select of [year, language, topic]) choose(select);
  })();
  return loading;
}

async function ensure(chosenYear) {
  // the pieces a search needs (every piece, or the chosen year's), merged once
  const work = [];
  for (const p of pieces) {
    if (chosenYear && p.year !== chosenYear) continue;
    for (const lang of p.languages) {
      if (!instances[lang]) continue;
      merged[lang][p.name] ??= instances[lang].mergeIndex(BASE + p.name + "/", { language: lang });
      work.push(merged[lang][p.name]);
    }
  }
  await Promise.all(work);
}

function excerptNodes(html) {
  // Pagefind's excerpt is escaped text with <mark> around matches: keep only those.
  const template = document.createElement("template");
  template.innerHTML = html;
  const out = document.createDocumentFragment();
  for (const node of template.content.childNodes) {
    if (node.nodeName === "MARK") {
      const mark = document.createElement("mark");
      mark.textContent = node.textContent;
      out.append(mark);
    } else {
      out.append(document.createTextNode(node.textContent));
    }
  }
  return out;
}

function resultItem(data) {
  const li = document.createElement("li");
  const lang = data.meta.language || "";
  if (lang) li.lang = lang;
  const label = document.createElement("span");
  label.className = "kind";
  label.textContent = data.meta.kind || "";
  const h2 = document.createElement("h2");
  const a = document.createElement("a");
  a.href = data.url;
  a.textContent = data.meta.title || data.url;
  h2.append(a);
  const when = document.createElement("p");
  when.className = "meta";
  when.textContent = data.meta.date || "";
  const excerpt = document.createElement("p");
  excerpt.append(excerptNodes(data.excerpt || ""));
  // a result may be in another script than the page (Arabic on an English
  // page): each part takes the direction of its own text
  for (const el of [label, h2, when, excerpt]) el.dir = "auto";
  li.append(label, h2, when, excerpt);
  return li;
}

function remember() {
  const params = new URLSearchParams();
  for (const el of [q, kind, topic, year, language]) if (el.value) params.set(el.name, el.value);
  if (page) params.set("page", String(page + 1));
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
}

async function show() {
  const mine = run;
  const slice = hits.slice(page * PAGE, (page + 1) * PAGE);
  const data = await Promise.all(slice.map((hit) => hit.data()));
  if (mine !== run) return;
  list.replaceChildren(...data.map(resultItem));
  const pages = Math.ceil(hits.length / PAGE);
  pager.hidden = pages < 2;
  field("page-of").textContent = say("pageOf", { page: page + 1, pages });
  field("prev").disabled = page === 0;
  field("next").disabled = page + 1 >= pages;
  remember();
}

async function search(retry = true) {
  try {
    await find();
  } catch (error) {
    // a rebuild replaced the index under this page: start again from the new entry point
    console.warn("search failed, starting again", error);
    Object.values(instances).forEach((inst) => inst.destroy());
    loading = null; instances = {}; merged = {}; pieces = [];
    if (retry) return search(false);
    status.textContent = say("unavailable");
  }
}

async function find() {
  const mine = ++run;
  await load(); // the year and topic choices come with the manifest
  await ensure(year.value);
  if (mine !== run) return;
  const term = q.value.trim();
  const filters = {};
  for (const select of [kind, topic, year]) if (select.value) filters[select.name] = select.value;
  if (!term && !Object.keys(filters).length) {
    hits = []; list.replaceChildren(); pager.hidden = true; status.textContent = "";
    page = 0; remember();
    return;
  }
  status.textContent = say("searching");
  const chosen = language.value ? [language.value] : Object.keys(instances);
  const found = await Promise.all(
    chosen.filter((l) => instances[l]).map((l) => instances[l].search(term || null, { filters })),
  );
  if (mine !== run) return;
  hits = found.flatMap((f) => (f ? f.results : [])).sort((a, b) => b.score - a.score);
  const pages = Math.max(1, Math.ceil(hits.length / PAGE));
  page = Math.min(page, pages - 1);
  await show();
  if (mine !== run) return;
  // announced once the results are on the page
  const count = plural.select(hits.length) === "one" ? "One" : "Other";
  status.textContent = say(term ? `foundTerm${count}` : `found${count}`, { n: hits.length, term });
}

let timer = 0;
q.addEventListener("input", () => { clearTimeout(timer); page = 0; timer = setTimeout(search, 250); });
q.addEventListener("focus", () => load().then(() => ensure(year.value)).catch(() => {}), { once: true });
for (const select of [kind, topic, year, language]) select.addEventListener("change", () => { page = 0; search(); });
form.addEventListener("submit", (event) => { event.preventDefault(); page = 0; search(); });
const turn = (by) => { page += by; show().catch(() => search()); list.scrollIntoView(); };
field("prev").addEventListener("click", () => { if (page > 0) turn(-1); });
field("next").addEventListener("click", () => turn(1));

q.value = wanted.get("q") || "";
page = Math.max(0, (parseInt(wanted.get("page") || "1", 10) || 1) - 1);
const asked = q.value || ["kind", "topic", "year"].some((n) => wanted.get(n));
choose(kind);
if (asked) search();
