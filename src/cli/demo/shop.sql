-- shop.sql: the example pipeline of `sluice demo` — an online shop, kept live.
--
-- A pipeline file declares where data comes in (tables and sources), what is derived from it
-- (views), and where derived data goes (sinks). Sluice keeps every view up to date
-- incrementally: each new row changes only the view rows it touches, so a view costs about the
-- same per event whether the shop has a hundred orders or a hundred million.
--
-- In the demo, a generator plays the shop: new customers, price changes, orders, and each
-- order's status events. Try, while it runs:
--   curl 'localhost:7878/v1/views/top_products'
--   curl 'localhost:7878/v1/views/orders_by_status'
--   curl 'localhost:7878/v1/search/products_search?q=creme+lamp'

-- ── Tables: the systems of record ───────────────────────────────────────────────────────────
-- Fed by POST /v1/tables/NAME/events (here, by the demo's generator). With a PRIMARY KEY,
-- writing a row whose key exists is an update: that is how a price change arrives.

CREATE TABLE customers (
  id        bigint PRIMARY KEY,
  name      text,
  email     text,
  country   text,
  signed_up timestamptz
);

CREATE TABLE products (
  id          bigint PRIMARY KEY,
  title       text,
  description text,
  category    text,
  price       numeric(10,2)
);

-- amount is quantity × the product's price when the order was placed: a later price change
-- does not rewrite history.
CREATE TABLE orders (
  id          bigint PRIMARY KEY,
  customer_id bigint,
  product_id  bigint,
  quantity    int,
  amount      numeric(12,2),
  placed_at   timestamptz
);

-- An event stream, not a keyed table: every status change is a new row
-- (placed → paid → shipped → delivered, or → cancelled), and the latest one per order counts.
CREATE TABLE order_status (
  order_id bigint,
  status   text,
  at       timestamptz
);

-- ── Views: derived data, always current ─────────────────────────────────────────────────────
-- Revenue here is the value of orders placed; cancellations show in orders_by_status.

-- Sales per product. Aggregating orders before joining them to products keeps a price change
-- cheap: it touches one row here, not every order of that product.
CREATE VIEW product_sales AS
  SELECT product_id, count(*) AS orders, sum(quantity) AS units, sum(amount) AS revenue
  FROM orders
  GROUP BY product_id;

-- The ten best-selling products. ORDER BY … LIMIT in a view is a maintained top-k: a new
-- order changes it only when it moves a product into, out of, or within the top ten.
CREATE VIEW top_products AS
  SELECT p.id, p.title, p.category, s.units, s.revenue
  FROM product_sales s JOIN products p ON p.id = s.product_id
  ORDER BY s.revenue DESC, p.id
  LIMIT 10;

-- Revenue per category, built on product_sales: views can read other views.
CREATE VIEW category_revenue AS
  SELECT p.category, sum(s.orders)::bigint AS orders, sum(s.units)::bigint AS units,
         sum(s.revenue) AS revenue
  FROM product_sales s JOIN products p ON p.id = s.product_id
  GROUP BY p.category;

-- Orders and revenue per customer, with the customer's name and country.
CREATE VIEW customer_revenue AS
  SELECT c.id AS customer_id, c.name, c.country, t.orders, t.revenue
  FROM (SELECT customer_id, count(*) AS orders, sum(amount) AS revenue
        FROM orders GROUP BY customer_id) t
  JOIN customers c ON c.id = t.customer_id;

-- Each order's current status: DISTINCT ON keeps the first row per order_id in ORDER BY
-- order, here the latest event. A new event replaces its order's row.
CREATE VIEW order_latest_status AS
  SELECT DISTINCT ON (order_id) order_id, status, at
  FROM order_status
  ORDER BY order_id, at DESC;

-- How many orders are in each status right now: an order moving from paid to shipped is
-- one change, −1 for paid and +1 for shipped.
CREATE VIEW orders_by_status AS
  SELECT status, count(*) AS orders
  FROM order_latest_status
  GROUP BY status;

-- ── Sinks: derived data, delivered ──────────────────────────────────────────────────────────
-- A full-text search index over the products, kept in step with the table: a price change
-- updates the indexed document. A title match weighs three times a description match.
-- Search ignores case and accents: "creme" finds "crème". Query it with
--   GET /v1/search/products_search?q=walnut+lamp
CREATE SINK products_search FROM products INTO SEARCH
  WITH (fields = 'title^3, description, category');
