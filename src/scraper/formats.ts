import { convert as htmlToText } from 'html-to-text';
import TurndownService from 'turndown';

export type OutputFormat = 'raw' | 'text' | 'markdown';

const turndown = new TurndownService({
  headingStyle: 'atx',
  codeBlockStyle: 'fenced',
  bulletListMarker: '-',
});
// Scripts, styles and other non-content never belong in text or markdown output.
turndown.remove(['script', 'style', 'noscript', 'template', 'iframe', 'head']);

export function isHtml(contentType: string | undefined, body: string): boolean {
  if (contentType) return /\b(text\/html|application\/xhtml\+xml)\b/i.test(contentType);
  return /^\s*(<!doctype html|<html[\s>])/i.test(body.slice(0, 512));
}

/** Renders a decoded body in the requested format; non-HTML bodies are returned as they are. */
export function renderContent(body: string, contentType: string | undefined, format: OutputFormat): string {
  if (format === 'raw' || !isHtml(contentType, body)) return body;
  if (format === 'text') {
    return htmlToText(body, {
      wordwrap: false,
      selectors: [
        { selector: 'a', options: { ignoreHref: true } },
        { selector: 'img', format: 'skip' },
      ],
    }).trim();
  }
  return turndown.turndown(body).trim();
}
