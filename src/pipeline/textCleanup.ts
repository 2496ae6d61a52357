/**
 * CLIP's text clean-up before BPE: ftfy's fixes that recipe text meets, HTML unescape (twice, as
 * CLIP does), whitespace collapse and lower-casing.
 *
 * ftfy itself is a large Python library; this covers the fixes named in the engine issue: HTML
 * entities, curly quotes, Latin ligatures, full-width forms and composed accents (NFC). Mojibake
 * repair is out of scope: gRPC strings arrive as valid UTF-8.
 */

// The entities recipe text carries in practice; numeric references are decoded in general.
const NAMED_ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', deg: '°', frac12: '½', frac14: '¼',
  frac34: '¾', frac13: '⅓', frac23: '⅔', times: '×', divide: '÷', plusmn: '±', minus: '−', ndash: '–',
  mdash: '—', hellip: '…', lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”', sbquo: '‚', bdquo: '„', middot: '·',
  bull: '•', copy: '©', reg: '®', trade: '™', eacute: 'é', egrave: 'è', ecirc: 'ê', euml: 'ë', aacute: 'á',
  agrave: 'à', acirc: 'â', auml: 'ä', aring: 'å', atilde: 'ã', iacute: 'í', igrave: 'ì', icirc: 'î', iuml: 'ï',
  oacute: 'ó', ograve: 'ò', ocirc: 'ô', ouml: 'ö', otilde: 'õ', oslash: 'ø', uacute: 'ú', ugrave: 'ù',
  ucirc: 'û', uuml: 'ü', ntilde: 'ñ', ccedil: 'ç', szlig: 'ß', aelig: 'æ', oelig: 'œ', Eacute: 'É',
  Egrave: 'È', Agrave: 'À', Ccedil: 'Ç', Ntilde: 'Ñ', Ouml: 'Ö', Uuml: 'Ü', Auml: 'Ä', micro: 'µ', cent: '¢',
  pound: '£', euro: '€', yen: '¥', sup2: '²', sup3: '³', shy: '\u00ad', ensp: '\u2002', emsp: '\u2003', thinsp: '\u2009',
};

const LIGATURES: Record<string, string> = {
  'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl', 'ﬅ': 'ſt', 'ﬆ': 'st', 'Ĳ': 'IJ', 'ĳ': 'ij', 'Ŀ': 'L·', 'ŀ': 'l·',
  'ŉ': 'ʼn', 'Ǆ': 'DŽ', 'ǅ': 'Dž', 'ǆ': 'dž', 'Ǉ': 'LJ', 'ǈ': 'Lj', 'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj',
  'Ǳ': 'DZ', 'ǲ': 'Dz', 'ǳ': 'dz',
};

export function unescapeHtml(text: string): string {
  return text.replace(/&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);/g, (match, body: string) => {
    if (body[0] === '#') {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      // As Python's html.unescape: invalid code points become U+FFFD.
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : '\ufffd';
    }
    return NAMED_ENTITIES[body] ?? match;
  });
}

/** ftfy's `fix_text` subset: entities, curly quotes, ligatures, full-width characters, NFC. */
export function fixText(text: string): string {
  let fixed = unescapeHtml(text);
  fixed = fixed.replace(/[\u02bc\u2018-\u201b]/g, "'").replace(/[\u201c-\u201f]/g, '"');
  fixed = fixed.replace(/[\u0132\u0133\u013f\u0140\u0149\u01c4-\u01cc\u01f1-\u01f3\ufb00-\ufb06]/g, (c) => LIGATURES[c] ?? c);
  // Full-width ASCII and the ideographic space, as ftfy's fix_character_width does via NFKC.
  fixed = fixed.replace(/[\uff01-\uff5e]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0)).replace(/\u3000/g, ' ');
  return fixed.normalize('NFC');
}

/** The full clean-up CLIP's SimpleTokenizer applies before pre-tokenisation. */
export function cleanText(text: string): string {
  const unescaped = unescapeHtml(unescapeHtml(fixText(text))).trim();
  return unescaped.replace(/\s+/g, ' ').trim().toLowerCase();
}
