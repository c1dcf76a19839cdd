import { describe, expect, it } from 'vitest'
import { type OpenAPIDocumentLike, renderDocsPage } from '../../src/docs/page.ts'

const problemContent = {
  'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } },
}

function sampleDocument(): OpenAPIDocumentLike {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Widgets <API>',
      version: '1.2.3',
      description: 'Manage widgets. Errors are `application/problem+json`.',
    },
    tags: [
      { name: 'widgets', description: 'Widget lifecycle' },
      { name: 'system', description: 'Health' },
    ],
    paths: {
      '/v1/widgets/{id}/parts': {
        post: {
          operationId: 'createWidgetPart',
          tags: ['widgets'],
          summary: 'Create a part',
          description: 'Beware of <script>alert(1)</script> and use `dry-run` first.',
          security: [{ Bearer: [] }],
          parameters: [
            {
              name: 'id',
              in: 'path',
              required: true,
              schema: { type: 'string', pattern: '^[a-z0-9]+$' },
              description: 'Widget id',
            },
            {
              name: 'mode',
              in: 'query',
              required: false,
              schema: { type: 'string', enum: ['fast', 'careful'], default: 'careful' },
            },
          ],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/PartInput' } } },
          },
          responses: {
            '201': {
              description: 'The part was created',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/Part' } } },
            },
            '404': { description: 'No such widget', content: problemContent },
          },
        },
      },
      '/health': {
        get: {
          operationId: 'getHealth',
          tags: ['system'],
          summary: 'Liveness',
          security: [],
          responses: {
            '200': {
              description: 'Alive',
              content: {
                'application/json': {
                  schema: { type: 'object', properties: { ok: { type: 'boolean' } } },
                },
              },
            },
          },
        },
      },
    },
    components: {
      securitySchemes: { Bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        PartInput: {
          type: 'object',
          required: ['name', 'dimensions'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 64 },
            dimensions: {
              type: 'object',
              required: ['width'],
              properties: { width: { type: 'integer', minimum: 1 }, depth: { type: 'number' } },
            },
            labels: { type: 'object', additionalProperties: { type: 'string' } },
            colors: { type: 'array', items: { type: 'string', enum: ['red', 'blue'] } },
            note: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'Free text' },
          },
        },
        Part: {
          type: 'object',
          required: ['id', 'input'],
          properties: {
            id: { type: 'string' },
            input: { $ref: '#/components/schemas/PartInput' },
            replacedBy: { type: ['string', 'null'] },
          },
        },
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
          },
        },
      },
    },
  }
}

/** The page's text with tags removed and the common entities decoded. */
function visibleText(html: string): string {
  return html
    .replace(/<style>[\s\S]*?<\/style>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
}

describe('renderDocsPage', () => {
  const html = renderDocsPage(sampleDocument())

  it('renders a complete HTML document with inline styles', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true)
    expect(html).toMatch(/<html lang="en">[\s\S]*<head>[\s\S]*<\/head>[\s\S]*<body>/)
    expect(html).toContain('<meta charset="utf-8">')
    expect(html).toMatch(/<style>[\s\S]+prefers-color-scheme:dark[\s\S]+<\/style>/)
    expect(html.trimEnd().endsWith('</html>')).toBe(true)
  })

  it('shows the title, version and description with the title escaped', () => {
    expect(html).toContain('<title>Widgets &lt;API&gt; 1.2.3 — API reference</title>')
    expect(html).toContain('v1.2.3')
    expect(html).toContain('Errors are <code>application/problem+json</code>.')
  })

  it('shows every operationId and path as visible text', () => {
    const text = visibleText(html)
    for (const visible of ['createWidgetPart', 'getHealth', '/v1/widgets/{id}/parts', '/health']) {
      expect(text).toContain(visible)
    }
  })

  it('anchors each operation section at its operationId and links it from the contents', () => {
    for (const id of ['createWidgetPart', 'getHealth']) {
      expect(html).toContain(`<section class="operation" id="${id}">`)
      expect(html).toContain(`href="#${id}"`)
    }
  })

  it('groups the contents by tag in the declared order', () => {
    const toc = html.slice(html.indexOf('<nav'), html.indexOf('</nav>'))
    expect(toc.indexOf('widgets')).toBeGreaterThan(-1)
    expect(toc.indexOf('widgets')).toBeLessThan(toc.indexOf('system'))
  })

  it('references no external resources', () => {
    expect(html).not.toMatch(/https?:\/\//i)
    expect(html).not.toMatch(/\b(src|href|action|srcset|poster)\s*=\s*(?!["']?#)/i)
    expect(html).not.toContain('@import')
    expect(html).not.toMatch(/url\(/i)
    expect(html).not.toMatch(/<(script|link|img|iframe|object|embed)\b/i)
  })

  it('escapes markup in descriptions and renders backtick pairs as code', () => {
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(html).not.toContain('<script>alert(1)')
    expect(html).toContain('<code>dry-run</code>')
  })

  it('escapes markup in every kind of document text, including names used as anchors', () => {
    const doc = sampleDocument()
    const evil = '"><img src=x onerror=alert(1)>'
    doc.tags = [{ name: evil, description: evil }]
    doc.paths = {
      [`/x/${evil}`]: {
        get: {
          operationId: evil,
          summary: evil,
          tags: [evil],
          parameters: [{ name: evil, in: 'query', description: evil, schema: { enum: [evil] } }],
          responses: { [evil]: { description: evil } },
        },
      },
    }
    doc.components = {
      schemas: { [evil]: { type: 'object', properties: { [evil]: { title: evil } } } },
    }
    const page = renderDocsPage(doc)
    expect(page).not.toContain('<img')
    expect(page).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;')
  })

  it('links a $ref to the schema section, which exists with a matching anchor', () => {
    expect(html).toContain('<a class="ref" href="#schema-PartInput">PartInput</a>')
    expect(html).toContain('<a class="ref" href="#schema-Part">Part</a>')
    for (const name of ['PartInput', 'Part', 'Problem']) {
      expect(html).toContain(`id="schema-${name}"`)
    }
  })

  it('links problem responses to the Problem schema and lists them under Errors', () => {
    expect(html).toContain('application/problem+json')
    expect(html).toContain('href="#schema-Problem"')
    const errors = html.slice(html.indexOf('id="errors"'), html.indexOf('id="schemas"'))
    expect(errors).toContain('404')
    expect(errors).toContain('No such widget')
  })

  it('documents parameters with location, requirement, pattern, enum and default', () => {
    const section = operationSection(html, 'createWidgetPart')
    const text = visibleText(section)
    expect(text).toMatch(/id\s+path\s+required/)
    expect(text).toMatch(/mode\s+query\s+optional/)
    expect(text).toContain('^[a-z0-9]+$')
    expect(text).toContain('"fast"')
    expect(text).toContain('"careful"')
    expect(text).toContain('Widget id')
  })

  it('describes authentication as a bearer token or public', () => {
    expect(visibleText(operationSection(html, 'createWidgetPart'))).toContain('Bearer token')
    expect(visibleText(operationSection(html, 'getHealth'))).toContain('Public')
  })

  it('shows the request body media type and the 201 response', () => {
    const text = visibleText(operationSection(html, 'createWidgetPart'))
    expect(text).toContain('Request body')
    expect(text).toContain('application/json')
    expect(text).toContain('201')
    expect(text).toContain('The part was created')
  })

  it('renders nested objects, arrays, records, nullable fields and required marks', () => {
    const schema = visibleText(schemaSection(html, 'PartInput'))
    expect(schema).toMatch(/dimensions\s+required/)
    expect(schema).toMatch(/width\s+required\s+integer\s+≥\s+1/)
    expect(schema).toMatch(/depth\s+optional\s+number/)
    expect(schema).toMatch(/labels\s+optional\s+record<string,\s+string\s*>/)
    expect(schema).toMatch(/colors\s+optional\s+array of\s+string/)
    expect(schema).toContain('"red"')
    expect(schema).toMatch(/note\s+optional\s+string\s+\|\s*null/)
    expect(schema).toContain('Free text')
    expect(schema).toMatch(/max length\s+64/)
    const part = visibleText(schemaSection(html, 'Part'))
    expect(part).toMatch(/replacedBy\s+optional\s+string\s+\|\s*null/)
  })

  it('notes which operations use each schema', () => {
    const section = schemaSection(html, 'PartInput')
    expect(section).toContain('href="#createWidgetPart"')
  })

  it('terminates on self-referencing and very deeply nested inline schemas', () => {
    const doc = sampleDocument()
    const cyclic: Record<string, unknown> = { type: 'object' }
    cyclic.properties = { self: cyclic }
    let deep: Record<string, unknown> = { type: 'string' }
    for (let i = 0; i < 50; i++) deep = { type: 'object', properties: { [`level${i}`]: deep } }
    doc.components = {
      schemas: {
        Tree: {
          type: 'object',
          properties: { children: { type: 'array', items: { $ref: '#/components/schemas/Tree' } } },
        },
        Cyclic: cyclic,
        Deep: deep,
      },
    }
    const page = renderDocsPage(doc)
    expect(page).toContain('id="schema-Tree"')
    expect(page).toContain('href="#schema-Tree"')
    expect(page).toContain('nested too deeply')
    expect(page.length).toBeLessThan(500_000)
  })

  it('tolerates missing and malformed parts of the document', () => {
    const doc = {
      info: { title: 'Bare', version: '0' },
      paths: { '/a': { get: { responses: 'nonsense' }, post: null }, '/b': 42 },
      components: { schemas: { Odd: 'not a schema' } },
    } satisfies OpenAPIDocumentLike
    const page = renderDocsPage(doc)
    expect(page).toContain('/a')
    expect(page).toContain('id="schema-Odd"')
  })
})

function operationSection(html: string, id: string): string {
  const start = html.indexOf(`id="${id}"`)
  expect(start).toBeGreaterThan(-1)
  const end = html.indexOf('<section class="operation', start + 1)
  return html.slice(start, end === -1 ? html.indexOf('id="errors"', start) : end)
}

function schemaSection(html: string, name: string): string {
  const start = html.indexOf(`id="schema-${name}"`)
  expect(start).toBeGreaterThan(-1)
  const end = html.indexOf('<section class="component"', start + 1)
  return html.slice(start, end === -1 ? undefined : end)
}
