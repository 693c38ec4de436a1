import type { Money } from './money.js';

export interface Product {
  id: string;
  name: string;
  description: string;
  picture: string;
  priceUsd: Money;
  categories: string[];
}

const usd = (units: number, nanos: number): Money => ({ currencyCode: 'USD', units, nanos });

/** The nine products of Online Boutique's productcatalogservice (products.json). */
export const PRODUCTS: readonly Product[] = [
  { id: 'OLJCESPC7Z', name: 'Sunglasses', description: 'Add a modern touch to your outfits with these sleek aviator sunglasses.', picture: '/static/img/products/sunglasses.jpg', priceUsd: usd(19, 990_000_000), categories: ['accessories'] },
  { id: '66VCHSJNUP', name: 'Tank Top', description: 'Perfectly cropped cotton tank, with a scooped neckline.', picture: '/static/img/products/tank-top.jpg', priceUsd: usd(18, 990_000_000), categories: ['clothing', 'tops'] },
  { id: '1YMWWN1N4O', name: 'Watch', description: 'This gold-tone stainless steel watch will work with most of your outfits.', picture: '/static/img/products/watch.jpg', priceUsd: usd(109, 990_000_000), categories: ['accessories'] },
  { id: 'L9ECAV7KIM', name: 'Loafers', description: 'A neat addition to your summer wardrobe.', picture: '/static/img/products/loafers.jpg', priceUsd: usd(89, 990_000_000), categories: ['footwear'] },
  { id: '2ZYFJ3GM2N', name: 'Hairdryer', description: 'This lightweight hairdryer has 3 heat and speed settings. It\'s perfect for travel.', picture: '/static/img/products/hairdryer.jpg', priceUsd: usd(24, 990_000_000), categories: ['hair', 'beauty'] },
  { id: '0PUK6V6EV0', name: 'Candle Holder', description: 'This small but intricate candle holder is an excellent gift.', picture: '/static/img/products/candle-holder.jpg', priceUsd: usd(18, 990_000_000), categories: ['decor', 'home'] },
  { id: 'LS4PSXUNUM', name: 'Salt & Pepper Shakers', description: 'Add some flavor to your kitchen.', picture: '/static/img/products/salt-and-pepper-shakers.jpg', priceUsd: usd(18, 490_000_000), categories: ['kitchen'] },
  { id: '9SIQT8TOJO', name: 'Bamboo Glass Jar', description: 'This bamboo glass jar can hold 57 oz (1.7 l) and is perfect for any kitchen.', picture: '/static/img/products/bamboo-glass-jar.jpg', priceUsd: usd(5, 490_000_000), categories: ['kitchen'] },
  { id: '6E92ZMYYFZ', name: 'Mug', description: 'A simple mug with a mustard interior.', picture: '/static/img/products/mug.jpg', priceUsd: usd(8, 990_000_000), categories: ['kitchen'] },
];

export class ProductNotFoundError extends Error {
  readonly type = 'product-not-found';
  constructor(id: string) {
    super(`no product with ID ${id}`);
  }
}

export const catalog = {
  listProducts: (): Product[] => [...PRODUCTS],
  getProduct: (id: string): Product => {
    const p = PRODUCTS.find((x) => x.id === id);
    if (p === undefined) throw new ProductNotFoundError(id);
    return p;
  },
  searchProducts: (query: string): Product[] => PRODUCTS.filter((p) => `${p.name} ${p.description}`.toLowerCase().includes(query.toLowerCase())),
};
