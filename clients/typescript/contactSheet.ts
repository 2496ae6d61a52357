import sharp, { type OverlayOptions } from 'sharp';

export interface SheetFrame {
  png: Buffer;
  caption: string;
}

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/** Wraps a caption to lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && (line + ' ' + word).length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.slice(0, 4);
}

/** All steps side by side, each scaled to `tile` pixels, with its number and text underneath. */
export async function contactSheet(frames: SheetFrame[], tile = 192): Promise<Buffer> {
  const gap = 12;
  const captionHeight = 84;
  const width = frames.length * (tile + gap) + gap;
  const height = tile + captionHeight + 2 * gap;
  const layers: OverlayOptions[] = [];
  for (const [i, frame] of frames.entries()) {
    const left = gap + i * (tile + gap);
    layers.push({ input: await sharp(frame.png).resize(tile, tile, { kernel: 'nearest' }).png().toBuffer(), left, top: gap });
    const lines = wrap(`${i + 1}. ${frame.caption}`, Math.floor(tile / 8));
    const text = lines.map((l, k) => `<text x="0" y="${16 + k * 18}" font-family="DejaVu Sans, sans-serif" font-size="14" fill="#222">${escapeXml(l)}</text>`).join('');
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${tile}" height="${captionHeight}">${text}</svg>`;
    layers.push({ input: Buffer.from(svg), left, top: gap + tile + 6 });
  }
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } }).composite(layers).png().toBuffer();
}
