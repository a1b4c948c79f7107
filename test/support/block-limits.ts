/**
 * Checks a rendered message against Slack's Block Kit limits (there is no offline validator): the tests
 * of every renderer run their output through this with extreme inputs.
 */
type Json = Record<string, unknown>;

function textOf(value: unknown): string {
  return typeof value === 'object' && value !== null && typeof (value as Json).text === 'string'
    ? ((value as Json).text as string)
    : '';
}

export function blockLimitProblems(message: { text: string; blocks: readonly Json[] }): string[] {
  const problems: string[] = [];
  if (message.text.length === 0) problems.push('fallback text is empty');
  if (message.text.length > 4_000) problems.push(`fallback text has ${message.text.length} characters`);
  if (message.blocks.length > 50) problems.push(`${message.blocks.length} blocks`);
  message.blocks.forEach((block, i) => {
    const at = `block ${i} (${String(block.type)})`;
    if (typeof block.block_id === 'string' && block.block_id.length > 255)
      problems.push(`${at}: block_id too long`);
    switch (block.type) {
      case 'section': {
        const text = textOf(block.text);
        if (block.text !== undefined && (text.length < 1 || text.length > 3_000))
          problems.push(`${at}: text ${text.length}`);
        const fields = (block.fields as unknown[] | undefined) ?? [];
        if (fields.length > 10) problems.push(`${at}: ${fields.length} fields`);
        for (const field of fields) {
          const t = textOf(field);
          if (t.length < 1 || t.length > 2_000) problems.push(`${at}: field ${t.length}`);
        }
        if (block.text === undefined && fields.length === 0) problems.push(`${at}: neither text nor fields`);
        break;
      }
      case 'header': {
        const t = textOf(block.text);
        if (t.length < 1 || t.length > 150) problems.push(`${at}: header ${t.length}`);
        break;
      }
      case 'context': {
        const elements = (block.elements as unknown[]) ?? [];
        if (elements.length < 1 || elements.length > 10) problems.push(`${at}: ${elements.length} elements`);
        for (const e of elements) if (textOf(e).length > 3_000) problems.push(`${at}: element too long`);
        break;
      }
      case 'actions': {
        const elements = (block.elements as Json[]) ?? [];
        if (elements.length < 1 || elements.length > 25) problems.push(`${at}: ${elements.length} elements`);
        const ids = new Set<string>();
        for (const e of elements) {
          const id = String(e.action_id);
          if (ids.has(id)) problems.push(`${at}: duplicate action_id ${id}`);
          ids.add(id);
          if (id.length > 255) problems.push(`${at}: action_id too long`);
          if (textOf(e.text).length > 75) problems.push(`${at}: button text too long`);
          if (typeof e.value === 'string' && e.value.length > 2_000)
            problems.push(`${at}: button value too long`);
          const confirm = e.confirm as Json | undefined;
          if (confirm) {
            if (textOf(confirm.title).length > 100) problems.push(`${at}: confirm title too long`);
            if (textOf(confirm.text).length > 300) problems.push(`${at}: confirm text too long`);
            if (textOf(confirm.confirm).length > 30 || textOf(confirm.deny).length > 30)
              problems.push(`${at}: confirm button too long`);
          }
        }
        break;
      }
      case 'divider':
        break;
      default:
        problems.push(`${at}: unexpected block type`);
    }
  });
  return problems;
}
