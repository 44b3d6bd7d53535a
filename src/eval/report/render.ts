/**
 * report.md and report.html from the report's blocks (doc.ts). The HTML is self-contained: inline
 * CSS, the charts as inline SVG (charts.ts), no script, no external URL.
 */
import type { Chart } from './charts.js';
import type { Block } from './doc.js';

const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function toMarkdown(blocks: Block[], charts: Chart[]): string {
  const byId = new Map(charts.map((c) => [c.id, c]));
  const out: string[] = [];
  for (const b of blocks) {
    if (b.kind === 'h') out.push(`${'#'.repeat(b.level)} ${b.text}`);
    else if (b.kind === 'p') out.push(b.text);
    else if (b.kind === 'list') out.push(b.items.map((i) => `- ${i}`).join('\n'));
    else if (b.kind === 'headline') out.push(b.items.map((i) => `**${i.value}** ${i.label}${i.status === 'info' ? '' : ` (${i.status})`}`).join(' · '));
    else if (b.kind === 'table') {
      out.push([`| ${b.head.map(mdCell).join(' | ')} |`, `| ${b.head.map(() => '---').join(' | ')} |`,
        ...b.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)].join('\n'));
    } else {
      const c = byId.get(b.id);
      if (c) out.push(`*Chart (in report.html): ${c.title}. ${c.caption}*`);
    }
  }
  return out.join('\n\n') + '\n';
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const inline = (s: string) => esc(s).replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>');

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 0; background: #fff; }
main { max-width: 76rem; margin: 0 auto; padding: 1rem 1.25rem 3rem; }
h1 { font-size: 1.5rem; margin: .5rem 0; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f6f8; }
td.s-pass { color: #0a6b2d; font-weight: 600; } td.s-fail { color: #b00020; font-weight: 600; } td.s-not { color: #777; }
.headline { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0; }
.card { border: 1px solid #ccd; border-radius: 8px; padding: .6rem .9rem; min-width: 9rem; background: #f8f9fc; }
.card .v { font-size: 1.6rem; font-weight: 700; } .card .l { color: #555; font-size: 12px; }
.card.pass { border-color: #0a6b2d; } .card.fail { border-color: #b00020; }
.card .st { font-size: 11px; text-transform: uppercase; letter-spacing: .05em; }
.card.pass .st { color: #0a6b2d; } .card.fail .st { color: #b00020; } .card .st.info { display: none; }
figure.chart { margin: 1rem 0; } figure.chart svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 12px; } figcaption b { color: #222; font-size: 13px; }
ul { padding-left: 1.2rem; } li { margin: .2rem 0; }
`;

function statusClass(cell: string): string {
  return cell === 'PASS' ? ' class="s-pass"' : cell === 'FAIL' ? ' class="s-fail"' : cell === 'not measured' ? ' class="s-not"' : '';
}

function htmlBlock(b: Block, byId: Map<string, Chart>): string {
  switch (b.kind) {
    case 'h': return `<h${b.level}>${esc(b.text)}</h${b.level}>`;
    case 'p': return `<p>${inline(b.text)}</p>`;
    case 'list': return `<ul>${b.items.map((i) => `<li>${inline(i)}</li>`).join('')}</ul>`;
    case 'headline': return `<div class="headline">${b.items.map((i) => `<div class="card ${i.status === 'not measured' ? 'not' : i.status}">` +
      `<div class="v">${esc(i.value)}</div><div class="l">${esc(i.label)}</div><div class="st ${i.status === 'info' ? 'info' : ''}">${esc(i.status)}</div></div>`).join('')}</div>`;
    case 'table': return `<table><thead><tr>${b.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${
      b.rows.map((r) => `<tr>${r.map((c) => `<td${statusClass(c)}>${inline(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
    case 'chart': {
      const c = byId.get(b.id);
      return c ? `<figure class="chart" data-chart="${esc(c.id)}">${c.svg}<figcaption><b>${esc(c.title)}.</b> ${esc(c.caption)}</figcaption></figure>` : '';
    }
  }
}

/** The inner content (no <html>/<head>): what web/report.js embeds into its page. */
export function htmlBody(blocks: Block[], charts: Chart[]): string {
  const byId = new Map(charts.map((c) => [c.id, c]));
  return `<main class="qkd-report">\n${blocks.map((b) => htmlBlock(b, byId)).join('\n')}\n</main>`;
}

export function toHtml(blocks: Block[], charts: Chart[], title: string): string {
  return `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n` +
    `<title>${esc(title)}</title>\n<style>${CSS}</style>\n</head>\n<body>\n${htmlBody(blocks, charts)}\n</body>\n</html>\n`;
}

export const REPORT_CSS = CSS;
