// @ts-check
/**
 * Tiny DOM helpers. Text always goes in through textContent, never through
 * innerHTML, so names coming from the API cannot inject markup.
 */

/**
 * @typedef {{ className?: string, text?: string, attrs?: Record<string, string> }} ElementProps
 */

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {ElementProps} [props]
 * @param {Array<Node | string>} [children]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, props = {}, children = []) {
  const element = document.createElement(tag);
  if (props.className !== undefined) element.className = props.className;
  if (props.text !== undefined) element.textContent = props.text;
  for (const [name, value] of Object.entries(props.attrs ?? {})) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

/** What each container shows now, to skip re-rendering identical data. */
const renderedData = new WeakMap();

/**
 * Replaces a container's children only when the data they show changed, in
 * one replaceChildren call: a periodic refresh neither flickers nor steals
 * focus or text selection when nothing moved.
 *
 * @template T
 * @param {Element} container
 * @param {T} data
 * @param {(data: T) => Node[]} render
 */
export function renderIfChanged(container, data, render) {
  const key = JSON.stringify(data);
  if (renderedData.get(container) === key) return;
  container.replaceChildren(...render(data));
  renderedData.set(container, key);
}

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`index.html has no element #${id}`);
  return element;
}

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
export function typedById(id, type) {
  const element = byId(id);
  if (!(element instanceof type)) throw new Error(`#${id} is not a ${type.name}`);
  return element;
}

/**
 * A badge such as "in-sync" or "down"; the class carries the colour.
 * @param {string} text
 * @param {string} kind
 */
export function badge(text, kind = text) {
  return el('span', { className: `badge badge-${kind}`, text });
}
