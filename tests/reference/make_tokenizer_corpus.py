#!/usr/bin/env python3
"""Writes the tokenizer parity corpus: tests/fixtures/tokenizer/<category>.txt, texts separated by
lines holding only U+241E (the record-separator symbol, which no text contains). Expected ids come
from tiktoken, not from here: run tests/reference/make_token_fixtures.js afterwards. (english.txt, the
hand-written edge cases, is not written here.) Also writes utf8_replace.json: byte strings with
invalid UTF-8 and what Python's bytes.decode("utf-8", errors="replace") makes of them.

Deterministic: the same seed and the same inputs give the same bytes. Inputs, all on Debian 12:
  /usr/share/unicode/      Debian's unicode-data 15.0.0: UnicodeData.txt, Scripts.txt, emoji/*.txt
                           (character repertoires; which class a character has is tiktoken's business)
  /usr/lib/python3.11/     a few standard-library modules, as source code
  --prose FILE             English prose (default benchmarks/data/heldout.txt; skipped if absent)
Hand-written sentences below cover the languages; random text fills in the rest of each repertoire.

Usage: /usr/bin/python3 tests/reference/make_tokenizer_corpus.py [--seed 1] [--out DIR] [--scale 1.0]
A different --seed (and --out) gives fresh texts of the same kinds, for checking texts the committed
tests have never seen (see make_token_fixtures.js).
"""
import argparse
import json
import os
import random
import sys
import unicodedata

UCD = "/usr/share/unicode"
SEP = "\n\u241E\n"
HERE = os.path.dirname(os.path.abspath(__file__))

# Code points whose class (letter / number / white space / other) changed between Unicode 15.0 and
# 16.0, the version of tiktoken's regex tables (computed from both UCDs). A tokenizer built on older
# tables splits these differently.
UNICODE_16_CHANGES = [
    (0x1C89, 0x1C8A), (0xA7CB, 0xA7CD), (0xA7DA, 0xA7DC), (0x105C0, 0x105F3), (0x10D40, 0x10D65),
    (0x10D6F, 0x10D85), (0x10EC2, 0x10EC4), (0x11380, 0x113B7), (0x113D1, 0x113D3), (0x116D0, 0x116E3),
    (0x11BC0, 0x11BE0), (0x11BF0, 0x11BF9), (0x13460, 0x143FA), (0x16100, 0x1611D), (0x16130, 0x16139),
    (0x16D40, 0x16D6C), (0x16D70, 0x16D79), (0x18CFF, 0x18CFF), (0x1CCF0, 0x1CCF9), (0x1E5D0, 0x1E5FA),
    (0x2EBF0, 0x2EE5D),  # CJK Extension I (Unicode 15.1)
]

WHITESPACE = ["\t", "\n", "\x0b", "\x0c", "\r", " ", "\x85", "\xa0", "\u1680"] + \
             [chr(c) for c in range(0x2000, 0x200B)] + ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
# Look like white space but are not White_Space (Cf / Mn): they must group as "other".
NOT_WHITESPACE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u180e", "\xad", "\u034f", "\u061c"]

# --------------------------------------------------------------------------------------------------
# Hand-written sentences

SENTENCES = {
    "zh": [
        "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
        "我今天早上喝了一杯咖啡，然后去图书馆看书。",
        "人工智能正在改变我们的生活方式和工作方式。",
        "这本书一共有三百二十五页，我已经读完了一半。",
        "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",
        "请问去火车站怎么走？往前走两百米，然后向左转。",
        "他说：“明天见！”我回答：“好的，不见不散。”",
        "臺灣的夜市很有名，有很多好吃的小吃，比如蚵仔煎和珍珠奶茶。",
        "學而時習之，不亦說乎？有朋自遠方來，不亦樂乎？",
        "长江是中国最长的河流，全长约六千三百公里。",
        "2024年第三季度，公司的营业收入增长了12.5%。",
        "我们需要在星期五之前完成这个项目（包括测试和文档）。",
        "天气预报说，明天有小雨，气温在十五到二十度之间。",
        "熊猫主要生活在四川、陕西和甘肃的山区。",
        "数学、物理、化学和生物是理科的四门基础课。",
    ],
    "ja": [
        "東京は日本の首都で、世界で最も人口の多い都市圏の一つです。",
        "今日はいい天気ですね。散歩に行きましょうか？",
        "私はラーメンが大好きで、毎週一回は食べに行きます。",
        "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
        "コンピューターのプログラミングを勉強しています。",
        "新幹線で大阪から京都まで約十五分かかります。",
        "「ありがとうございます」と彼女は言った。",
        "ｶﾀｶﾅの半角文字とＡＢＣ１２３の全角英数字も使われます。",
        "古池や蛙飛び込む水の音",
        "この本は２０２３年に出版されました。価格は１，５００円です。",
        "すみません、駅はどこですか？　まっすぐ行って、右に曲がってください。",
        "ヴァイオリンとチェロのコンサートは、午後七時に始まります。",
    ],
    "ko": [
        "서울은 대한민국의 수도이며 가장 큰 도시입니다.",
        "안녕하세요, 만나서 반갑습니다!",
        "저는 한국어를 공부하고 있어요. 아직 어렵지만 재미있어요.",
        "오늘 날씨가 정말 좋네요. 같이 산책할까요?",
        "세종대왕은 1443년에 훈민정음을 창제하였다.",
        "김치찌개와 된장찌개 중에서 무엇을 드시겠어요?",
        "한글은 자음 14개와 모음 10개로 이루어져 있습니다.",
        "ㄱㄴㄷㄹ ㅏㅑㅓㅕ 같은 자모도 따로 쓸 수 있다.",
        "내일 오후 세 시에 회의가 있습니다.",
    ],
    "ar": [
        "اللغة العربية هي إحدى أكثر اللغات انتشارًا في العالم.",
        "مرحبًا، كيف حالك اليوم؟",
        "القاهرة هي عاصمة جمهورية مصر العربية وأكبر مدنها.",
        "بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ",
        "ولد في عام ١٩٨٥ وتخرج من الجامعة عام ٢٠٠٧.",
        "هذا الكتاب جميـــــل جدًا، وأنصح بقراءته.",
        "السعر هو ٢٥٠ ريالًا، أي ما يعادل ٦٦٫٥ دولارًا.",
        "ذهبتُ إلى السوق واشتريتُ خبزًا وحليبًا وتفاحًا.",
        "من جدّ وجد، ومن زرع حصد.",
    ],
    "fa": [
        "زبان فارسی یکی از زبان‌های هندواروپایی است.",
        "تهران پایتخت ایران است و حدود ۹ میلیون نفر جمعیت دارد.",
        "من هر روز صبح چای می‌نوشم.",
    ],
    "ur": ["اردو پاکستان کی قومی زبان ہے۔", "آپ کا نام کیا ہے؟"],
    "he": [
        "ירושלים היא בירת ישראל.",
        "שָׁלוֹם עֲלֵיכֶם, מָה שְׁלוֹמְךָ?",
        "אני אוהב ללמוד שפות חדשות כל יום.",
        "בְּרֵאשִׁית בָּרָא אֱלֹהִים אֵת הַשָּׁמַיִם וְאֵת הָאָרֶץ.",
    ],
    "hi": [
        "भारत एक विशाल और विविधतापूर्ण देश है।",
        "मेरा नाम राहुल है और मैं दिल्ली में रहता हूँ।",
        "हिन्दी भारत की सबसे अधिक बोली जाने वाली भाषा है।",
        "आज मौसम बहुत अच्छा है, चलो बाहर घूमने चलते हैं।",
        "गंगा नदी हिमालय से निकलती है और बंगाल की खाड़ी में गिरती है।",
        "उसने १२३ रुपये में दो किताबें खरीदीं।",
        "कृपया धीरे-धीरे बोलिए, मुझे समझ नहीं आया।",
        "क्षत्रिय, ज्ञान, श्रद्धा और द्वार जैसे शब्दों में संयुक्ताक्षर हैं।",
    ],
    "bn": ["আমি বাংলায় গান গাই।", "ঢাকা বাংলাদেশের রাজধানী। জনসংখ্যা প্রায় ২ কোটি।"],
    "ta": ["தமிழ் மிகவும் பழமையான மொழிகளில் ஒன்று.", "சென்னை தமிழ்நாட்டின் தலைநகரம்."],
    "te": ["తెలుగు భాష చాలా మధురమైనది.", "హైదరాబాద్ ఒక పెద్ద నగరం."],
    "ml": ["മലയാളം കേരളത്തിലെ ഭാഷയാണ്."],
    "pa": ["ਪੰਜਾਬੀ ਇੱਕ ਸੁੰਦਰ ਭਾਸ਼ਾ ਹੈ।"],
    "gu": ["ગુજરાતી ભાષા ગુજરાતમાં બોલાય છે."],
    "th": [
        "ภาษาไทยเป็นภาษาราชการของประเทศไทย",
        "สวัสดีครับ คุณสบายดีไหม",
        "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย มีประชากรประมาณ ๘ ล้านคน",
        "ฉันชอบกินข้าวผัดกับต้มยำกุ้ง",
    ],
    "lo": ["ພາສາລາວເປັນພາສາທາງການຂອງລາວ"],
    "km": ["ភាសាខ្មែរគឺជាភាសាផ្លូវការរបស់កម្ពុជា។"],
    "my": ["မြန်မာဘာသာစကားသည် မြန်မာနိုင်ငံ၏ ရုံးသုံးဘာသာစကား ဖြစ်သည်။"],
    "si": ["ශ්‍රී ලංකාව දිවයිනකි."],
    "bo": ["བོད་ཀྱི་སྐད་ཡིག་ནི་རིག་གནས་ཀྱི་གཞི་རྩ་ཡིན།"],
    "ka": ["საქართველო მდებარეობს კავკასიაში.", "გამარჯობა, როგორ ხარ?"],
    "hy": ["Հայաստանի մայրաքաղաքը Երևանն է։", "Բարև, ինչպե՞ս ես։"],
    "am": ["አማርኛ የኢትዮጵያ የሥራ ቋንቋ ነው።", "ሰላም ነው? ደህና ነኝ።"],
    "ru": [
        "Москва — столица Российской Федерации.",
        "Я люблю читать книги, особенно романы Достоевского и Толстого.",
        "Съешь же ещё этих мягких французских булок, да выпей чаю.",
        "В 2023 году в городе проживало около 12,6 млн человек.",
        "«Здравствуйте!» — сказал он. — «Как поживаете?»",
        "ЁЛКА, ёжик и Щука: заглавные БУКВЫ тоже важны.",
    ],
    "uk": ["Київ — столиця України.", "Ґанок, їжак, єнот і її подвір'я."],
    "sr": ["Београд је главни град Србије.", "Đorđe živi u Novom Sadu."],
    "bg": ["България е държава в Югоизточна Европа."],
    "el": [
        "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
        "Καλημέρα! Τι κάνεις σήμερα;",
        "Ἐν ἀρχῇ ἦν ὁ λόγος, καὶ ὁ λόγος ἦν πρὸς τὸν θεόν.",
        "ΑΥΤΟ ΕΙΝΑΙ ΚΕΦΑΛΑΙΑ· και αυτό είναι ερωτηματικό;",
        "Ο Πυθαγόρας γεννήθηκε γύρω στο 570 π.Χ.",
    ],
    "vi": [
        "Tiếng Việt là ngôn ngữ chính thức của Việt Nam.",
        "Hà Nội là thủ đô, còn Thành phố Hồ Chí Minh là thành phố lớn nhất.",
        "Tôi muốn ăn phở bò và uống cà phê sữa đá.",
    ],
    "tr": ["İstanbul, Türkiye'nin en kalabalık şehridir.", "Iğdır'da ılık bir gün; İĞNE ve ığdır."],
    "de": ["Der Fußgängerübergang ist gesperrt.", "Größenverhältnisse ändern sich schnell, nicht wahr?"],
    "fr": ["L'été dernier, nous sommes allés à Besançon.", "Ça coûte 12,50 € — c'est très cher !"],
    "es": ["¿Dónde está la biblioteca? ¡Allí, junto al señor Muñoz!", "El niño comió paella."],
    "pl": ["Zażółć gęślą jaźń.", "Łódź leży w centralnej Polsce."],
    "cs": ["Příliš žluťoučký kůň úpěl ďábelské ódy."],
    "is": ["Þjóðin býr á Íslandi; þar er ð og þ í stafrófinu."],
    "nordic": ["Blåbærsyltetøy på smørbrød, ærlig talt.", "Åsa köpte äpplen och öl."],
    "chr": ["ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ ᎠᏂᏴᏫᏯ."],
    "iu": ["ᐃᓄᒃᑎᑐᑦ ᐅᖃᐅᓯᖅ ᓄᓇᕗᒻᒥ."],
    "mn": ["ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ᠌ ᠦᠨ ᠦᠰᠦᠭ"],
}

ENGLISH_EDGES = [
    "It's", "it's", "IT'S", "It'S", "don't", "DON'T", "we've", "WE'VE", "they'll", "THEY'LL", "I'm", "I'M",
    "you're", "YOU'RE", "he'd", "HE'D", "it’s", "don’t", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
    "''s", "' s", "'S", "'Re", "'LL", "'ll've", "rock'n'roll", "o'clock", "'tis", "'twas", "y'all'd've",
    "'", "''", "'''", "'1", "'é", "'ß", "'中", " 's", "  's", "\t's", "'\u00a0s", "'s'", "l'été", "dell'arte",
]

CODE_SNIPPETS = [
    '#include <vector>\nint main() {\n\tstd::vector<int> v{1, 2, 3};\n\tfor (auto& x : v) x *= 2;\n\treturn v[0] == 2 ? 0 : 1;\n}\n',
    'const f = (a, b) => a ?? b;\nlet s = `template ${f(1, 2)} string`;\nconsole.log(s?.length ?? -1);\n',
    '{"name": "tinyllm", "version": "0.1.0", "tags": ["c++", "gpt-2"], "unicode": "\\u00e9\\u4e2d", "n": -1.5e-3}',
    '<!DOCTYPE html>\n<html lang="en">\n  <head><meta charset="utf-8"><title>Test &amp; check</title></head>\n  <body><p class="x">Hello,&nbsp;world!</p></body>\n</html>\n',
    "SELECT id, name FROM users WHERE email LIKE '%@example.com' AND created_at >= '2024-01-01' ORDER BY id DESC LIMIT 10;",
    '#!/bin/sh\nset -eu\nfor f in *.txt; do\n  wc -l "$f" | awk \'{print $1}\' >> counts.log 2>&1\ndone\n',
    'all: build\n\nbuild:\n\t$(CXX) -O2 -std=c++17 -o app main.cpp\n\nclean:\n\trm -f app *.o\n',
    '| column | type | notes |\n|--------|------|-------|\n| id     | u32  | primary key |\n| name   | text | UTF-8 |\n',
    '--- a/file.c\n+++ b/file.c\n@@ -1,3 +1,4 @@\n int x;\n-int y;\n+int y = 0;\n+int z;\n',
    'fn main() {\n    let v: Vec<u8> = "héllo".bytes().collect();\n    println!("{:?} {}", v, v.len());\n}\n',
    'x = [i**2 for i in range(10) if i % 2 == 0]  # squares\nd = {"a": 1, \'b\': 2}\nprint(f"{x!r:>20}")\n',
    '    if (ptr != NULL && *ptr == \'\\0\') { /* empty */ return -EINVAL; }\r\n',
    'regex = r"^(?P<user>[\\w.+-]+)@(?P<host>[\\w-]+\\.[\\w.]+)$"\n',
    'a+=b;c-=d;e*=f;g/=h;i%=j;k<<=1;l>>=2;m&=n;o|=p;q^=r;s&&t||!u;v!=w==x<=y>=z;',
    '\t\t\t\tdeeply\n\t\t\t\t\tindented\n\t    mixed  \t  indentation\n',
    '/**\n * Doc comment with @param x the value\n * @return nothing\n */\nvoid f(int x);\n',
]

PY_MODULES = ["textwrap.py", "heapq.py", "bisect.py", "colorsys.py", "string.py", "base64.py", "fnmatch.py",
              "json/decoder.py", "json/encoder.py", "shlex.py", "glob.py", "getopt.py"]

# --------------------------------------------------------------------------------------------------
# Unicode repertoires (from Debian's unicode-data)


def load_ucd():
    cats, zeros = {}, []
    first = None
    with open(os.path.join(UCD, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fields = line.split(";")
            cp, name, cat = int(fields[0], 16), fields[1], fields[2]
            if cat == "Nd" and fields[6] == "0":
                zeros.append(cp)
            if name.endswith(", First>"):
                first = cp
            elif name.endswith(", Last>"):
                for c in range(first, cp + 1):
                    cats[c] = cat
            else:
                cats[cp] = cat
    scripts = {}
    with open(os.path.join(UCD, "Scripts.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#")[0].strip()
            if not line:
                continue
            rng, script = [x.strip() for x in line.split(";")]
            a, _, b = rng.partition("..")
            scripts.setdefault(script, []).extend(range(int(a, 16), int(b or a, 16) + 1))
    return cats, scripts, zeros


def emoji_sequences():
    seqs = {}
    for name in ("emoji-zwj-sequences.txt", "emoji-sequences.txt"):
        with open(os.path.join(UCD, "emoji", name), encoding="utf-8") as f:
            for line in f:
                line = line.split("#")[0].strip()
                if not line:
                    continue
                cps, kind = [x.strip() for x in line.split(";")[:2]]
                if ".." in cps:
                    a, b = cps.split("..")
                    for c in range(int(a, 16), int(b, 16) + 1):
                        seqs.setdefault(kind, []).append(chr(c))
                else:
                    seqs.setdefault(kind, []).append("".join(chr(int(c, 16)) for c in cps.split()))
    return seqs


class Gen:
    def __init__(self, seed, prose_path):
        self.r = random.Random(seed)
        self.cats, self.scripts, self.zeros = load_ucd()
        self.assigned = sorted(c for c in self.cats if not 0xD800 <= c <= 0xDFFF and c != 0x241E)
        self.by_cat = {}
        for c in self.assigned:
            self.by_cat.setdefault(self.cats[c], []).append(c)
        self.emoji = emoji_sequences()
        self.prose = []
        if prose_path and os.path.exists(prose_path):
            text = open(prose_path, encoding="utf-8").read()
            self.prose = [p.strip() for p in text.split("\n\n") if p.strip()]

    # small helpers
    def pick(self, xs):
        return xs[self.r.randrange(len(xs))]

    def n(self, lo, hi):
        return self.r.randint(lo, hi)

    def script_chars(self, script, letters_only=False):
        key = (script, letters_only)
        if not hasattr(self, "_sc"):
            self._sc = {}
        if key not in self._sc:
            ok = ("L",) if letters_only else ("L", "M", "N")
            self._sc[key] = [c for c in self.scripts.get(script, []) if self.cats.get(c, "Cn")[0] in ok]
        return self._sc[key]

    def script_word(self, script, lo=1, hi=10):
        letters = self.script_chars(script, True)
        allc = self.script_chars(script)
        out = []
        for _ in range(self.n(lo, hi)):
            out.append(chr(self.pick(letters if self.r.random() < 0.8 else allc)))
        return "".join(out)

    def spaces(self):
        r = self.r.random()
        if r < 0.7:
            return " "
        if r < 0.8:
            return "  "
        if r < 0.9:
            return "\n"
        return "".join(self.pick(WHITESPACE) for _ in range(self.n(1, 4)))

    def number(self):
        r = self.r.random()
        if r < 0.3:
            return str(self.n(0, 10 ** self.n(1, 12)))
        if r < 0.45:
            return f"{self.r.uniform(-1e6, 1e6):.{self.n(0, 6)}f}"
        if r < 0.55:
            return f"{self.n(1, 999):,}".replace(",", self.pick([",", ".", " ", "'", "\u202f", "\xa0", "_"])) + \
                   f"{self.pick([',', '.'])}{self.n(0, 999):03d}"
        if r < 0.65:
            return f"{self.r.uniform(0, 10):.3f}e{self.pick(['', '+', '-'])}{self.n(0, 300)}"
        if r < 0.72:
            return self.pick(["0x", "0X", "#", "0b", "0o", "\\x"]) + \
                   "".join(self.pick("0123456789abcdefABCDEF") for _ in range(self.n(1, 16)))
        if r < 0.8:
            return f"{self.n(1900, 2100)}-{self.n(1, 12):02d}-{self.n(1, 31):02d}" + \
                   self.pick(["", f"T{self.n(0, 23):02d}:{self.n(0, 59):02d}:{self.n(0, 59):02d}Z"])
        if r < 0.85:
            return ".".join(str(self.n(0, 255)) for _ in range(4))
        if r < 0.9:
            return self.pick(["$", "€", "£", "¥", "₹", "₩", "-", "+", "±", "~", "#", "№"]) + str(self.n(0, 99999))
        if r < 0.95:
            return str(self.n(0, 99)) + self.pick(["st", "nd", "rd", "th", "%", "‰", "°C", "km", "kg", "x", "D", "am"])
        return "".join(self.pick("0123456789") for _ in range(self.n(20, 300)))

    # ------------------------------------------------------------------------------------------
    # categories: each returns a list of texts

    def prose_texts(self, size):
        texts, total = [], 0
        if not self.prose:
            return texts
        while total < size:
            i = self.n(0, len(self.prose) - 1)
            t = "\n\n".join(self.prose[i:i + self.n(1, 6)])
            r = self.r.random()
            if r < 0.08:
                t = t.upper()
            elif r < 0.14:
                t = t.lower()
            elif r < 0.22:
                t = t.replace("\n", "\r\n")
            elif r < 0.3:
                t = t.replace(". ", ".  ")
            elif r < 0.38:
                t = t.replace("'", "\u2019").replace("\u2014", " -- ")
            elif r < 0.44:
                t = t.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
            elif r < 0.5:
                t = " " + t + self.pick([" ", "\n", "  \n", "\t"])
            texts.append(t)
            total += len(t.encode())
        return texts

    def code_texts(self, size):
        texts, total = [], 0
        libdir = os.path.dirname(os.__file__)
        sources = []
        for m in PY_MODULES:
            p = os.path.join(libdir, m)
            if os.path.exists(p):
                sources.append(open(p, encoding="utf-8").read())
        while total < size:
            if sources and self.r.random() < 0.6:
                s = self.pick(sources)
                a = self.n(0, max(0, len(s) - 200))
                t = s[a:a + self.n(100, 3000)]
            else:
                t = "".join(self.pick(CODE_SNIPPETS) for _ in range(self.n(1, 4)))
                if self.r.random() < 0.3:
                    t = t.replace("\n", "\r\n")
            texts.append(t)
            total += len(t.encode())
        return texts

    def number_texts(self, size):
        texts, total = [], 0
        while total < size:
            parts = []
            for _ in range(self.n(1, 40)):
                r = self.r.random()
                if r < 0.6:
                    parts.append(self.number())
                elif r < 0.8:
                    parts.append(self.pick(["and", "or", "x", "=", "+", "*", "/", ",", ";", "(", ")", "H2O", "3D",
                                            "abc123def", "v1.2.3-rc4", "COVID-19", "A4", "mp3", "1080p", "i18n"]))
                else:
                    parts.append(self.pick(ENGLISH_EDGES))
            t = "".join(p + self.pick(["", " ", " ", " ", ", ", "\n", "\t", "  "]) for p in parts)
            texts.append(t)
            total += len(t.encode())
        return texts

    def whitespace_texts(self, size):
        texts, total = [], 0
        words = ["word", "Word", "x", "1", "42", "!", "...", "中文", "é", "'s", "\u0301", "🙂", "\u0661", "-"]
        while total < size:
            parts = []
            for _ in range(self.n(1, 30)):
                r = self.r.random()
                if r < 0.5:
                    parts.append("".join(self.pick(WHITESPACE) for _ in range(self.n(1, 8))))
                elif r < 0.6:
                    parts.append(" " * self.n(1, 20))
                elif r < 0.7:
                    parts.append(self.pick(NOT_WHITESPACE) * self.n(1, 3))
                else:
                    parts.append(self.pick(words))
            t = "".join(parts)
            texts.append(t)
            total += len(t.encode())
        texts += [" ", "  ", "\n", "\r\n", "\t", "\u3000", "\xa0", "\u2028", " \u3000", "\u3000 ", " \n ",
                  "\n\n\n", "a \u3000b", "a\u3000 b", "a  \u3000b", "a\xa0\xa0b", " \xa0b", "\xa0 b", "\r\n\r\nx"]
        return texts

    def script_texts(self, langs, scripts, size):
        texts, total = [], 0
        while total < size:
            parts = []
            for _ in range(self.n(1, 12)):
                r = self.r.random()
                if r < 0.55:
                    parts.append(self.pick(SENTENCES[self.pick(langs)]))
                elif r < 0.85:
                    sc = self.pick(scripts)
                    parts.append(" ".join(self.script_word(sc) for _ in range(self.n(1, 8))))
                elif r < 0.93:
                    parts.append(self.number())
                else:
                    parts.append(self.pick(["Hello", "OK", "(", ")", "—", "...", "「", "」", "《", "》", "?", "!"]))
            t = "".join(p + self.spaces() * (self.r.random() < 0.7) for p in parts)
            texts.append(t)
            total += len(t.encode())
        return texts

    def marks_emoji_texts(self, size):
        marks = [c for c in self.assigned if self.cats[c] in ("Mn", "Me", "Mc")]
        latin_marks = [c for c in range(0x300, 0x370)] + list(range(0x1AB0, 0x1ACF)) + \
            list(range(0x1DC0, 0x1E00)) + list(range(0x20D0, 0x20F1)) + list(range(0xFE20, 0xFE30))
        seqs = [s for k, v in self.emoji.items() for s in v]
        zwj = self.emoji.get("RGI_Emoji_ZWJ_Sequence", [])
        flags = self.emoji.get("RGI_Emoji_Flag_Sequence", [])
        texts, total = [], 0
        while total < size:
            parts = []
            for _ in range(self.n(1, 20)):
                r = self.r.random()
                if r < 0.2:  # Latin letters with stacked combining marks (zalgo)
                    parts.append("".join(chr(self.n(0x61, 0x7A)) + "".join(
                        chr(self.pick(latin_marks)) for _ in range(self.n(0, 6))) for _ in range(self.n(1, 8))))
                elif r < 0.3:  # decomposed accented words
                    parts.append(unicodedata.normalize("NFD", self.pick(SENTENCES[self.pick(["vi", "fr", "el", "pl", "cs"])])))
                elif r < 0.38:  # any mark, after any letter
                    parts.append(chr(self.pick(self.by_cat["Lo"] + self.by_cat["Ll"])) +
                                 "".join(chr(self.pick(marks)) for _ in range(self.n(1, 3))))
                elif r < 0.55:
                    parts.append("".join(self.pick(zwj) for _ in range(self.n(1, 3))))
                elif r < 0.65:
                    parts.append("".join(self.pick(flags) for _ in range(self.n(1, 4))))
                elif r < 0.8:
                    parts.append("".join(self.pick(seqs) for _ in range(self.n(1, 5))))
                elif r < 0.85:  # loose regional indicators, skin tones, ZWJ, variation selectors
                    parts.append("".join(chr(self.pick([0x1F1E6 + self.n(0, 25), 0x1F3FB + self.n(0, 4), 0x200D,
                                                        0xFE0F, 0xFE0E, 0x20E3])) for _ in range(self.n(1, 6))))
                else:
                    parts.append(self.pick(["word", "Word", "123", "!", "'s", "中", "é", "a", "1"]))
            t = "".join(p + self.pick(["", "", " ", " ", "\n", "  "]) for p in parts)
            texts.append(t)
            total += len(t.encode())
        return texts

    def digit_texts(self, size):
        digits = [c for c in self.assigned if self.cats[c] == "Nd"]
        other_num = [c for c in self.assigned if self.cats[c] in ("No", "Nl")]
        zeros = self.zeros
        texts, total = [], 0
        while total < size:
            parts = []
            for _ in range(self.n(1, 25)):
                r = self.r.random()
                if r < 0.4:  # a number written in one script's digits
                    z = self.pick(zeros)
                    parts.append("".join(chr(z + self.n(0, 9)) for _ in range(self.n(1, 12))))
                elif r < 0.55:
                    parts.append("".join(chr(self.pick(digits)) for _ in range(self.n(1, 8))))
                elif r < 0.75:
                    parts.append("".join(chr(self.pick(other_num)) for _ in range(self.n(1, 5))))
                elif r < 0.85:
                    parts.append(self.number())
                else:
                    parts.append(self.pick(["x", "ab", "中", "à", "-", ".", ",", "/", "'s", "%"]))
            t = "".join(p + self.pick(["", "", " ", " ", "\n", ", "]) for p in parts)
            texts.append(t)
            total += len(t.encode())
        return texts

    def random_cp(self):
        r = self.r.random()
        if r < 0.25:  # anything (assigned or not, any plane), but no surrogates
            while True:
                c = self.n(0, 0x10FFFF)
                if not 0xD800 <= c <= 0xDFFF and c != 0x241E:
                    return c
        if r < 0.5:
            return self.pick(self.assigned)
        if r < 0.65:
            while True:
                c = self.n(0, 0xFFFF)
                if not 0xD800 <= c <= 0xDFFF and c != 0x241E:
                    return c
        if r < 0.8:
            a, b = self.pick(UNICODE_16_CHANGES)
            return self.n(a, b)
        if r < 0.85:  # noncharacters and the edges of the code space
            return self.pick([0xFFFE, 0xFFFF, 0x10FFFE, 0x10FFFF, 0xFDD0 + self.n(0, 31), 0x1FFFE, 0xEFFFF,
                              0xE000, 0xF8FF, 0xF0000, 0x10FFFD, 0x7F, 0x80, 0x9F, 0x0, 0x1, 0x1F])
        return self.pick(self.by_cat[self.pick(["Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No", "Mn", "Mc", "Me",
                                                 "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So",
                                                 "Zs", "Zl", "Zp", "Cc", "Cf", "Co"])])

    def random_texts(self, size):
        texts, total = [], 0
        while total < size:
            out = []
            for _ in range(self.n(1, 300)):
                r = self.r.random()
                if r < 0.6:
                    out.append(chr(self.random_cp()))
                elif r < 0.75:  # a contraction right after a character shows its class: "X's" is X + 's only
                    out.append(chr(self.random_cp()) + self.pick(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'"]))
                else:
                    out.append(self.pick([" ", " ", "a", "1", "'", "\n", "x "]))
            t = "".join(out)
            texts.append(t)
            total += len(t.encode())
        return texts

    def long_texts(self, size):
        """Long pieces, where BPE needs its O(n log n) algorithm: runs of one character, long words."""
        texts, total = [], 0
        while total < size:
            n = self.pick([self.n(90, 130), self.n(130, 600), self.n(600, 4000)])
            r = self.r.random()
            if r < 0.3:
                t = self.pick(["a", "e", "x", "Z", "0", "1", "9", "é", "中", "ア", "한", "!", "-", "=", "_", ".", " ", "\n", "\t"]) * n
            elif r < 0.45:
                t = "".join(self.pick("abcdefghijklmnopqrstuvwxyz") for _ in range(n))
            elif r < 0.55:
                t = "".join(self.pick("0123456789") for _ in range(n))
            elif r < 0.65:
                t = self.pick(["ab", "abc", "the", "ing", "00", "123", "ha", "la", "na", "ok"]) * (n // 2)
            elif r < 0.75:
                t = "".join(self.pick(SENTENCES["zh"]).rstrip("。") for _ in range(n // 40 + 1))
            elif r < 0.85:
                t = "".join(self.pick(["!", "?", ".", ",", "-", "*", "#", "~", "'", '"']) for _ in range(n))
            else:
                t = self.pick(["pneumonoultramicroscopicsilicovolcanoconiosis", "Rindfleischetikettierung",
                               "supercalifragilisticexpialidocious", "Llanfairpwllgwyngyll"]) * (n // 20 + 1)
            t = self.pick(["", " ", "x ", "\n"]) + t + self.pick(["", " ", " end", "\n", "!"])
            texts.append(t)
            total += len(t.encode())
        return texts

    def mixed_texts(self, size):
        langs = sorted(SENTENCES)
        texts = ["".join(e + s for s in ["", " ", "x", "1", "!"]) for e in ENGLISH_EDGES]
        total = sum(len(t.encode()) for t in texts)
        while total < size:
            parts = []
            for _ in range(self.n(1, 15)):
                r = self.r.random()
                if r < 0.4:
                    parts.append(self.pick(SENTENCES[self.pick(langs)]))
                elif r < 0.5:
                    parts.append(self.pick(ENGLISH_EDGES))
                elif r < 0.6:
                    parts.append(self.number())
                elif r < 0.7:
                    parts.append(chr(self.random_cp()))
                elif r < 0.8 and self.prose:
                    p = self.pick(self.prose)
                    a = self.n(0, max(0, len(p) - 80))
                    parts.append(p[a:a + self.n(1, 80)])
                else:
                    parts.append(self.pick(WHITESPACE + NOT_WHITESPACE + ["'", "’", "-", "—", "…", "🙂", "👩‍💻"]))
            t = "".join(p + self.pick(["", " ", " ", "\n"]) for p in parts)
            texts.append(t)
            total += len(t.encode())
        return texts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "fixtures", "tokenizer"))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every category's size")
    ap.add_argument("--prose", default=os.path.join(HERE, "..", "..", "benchmarks", "data", "heldout.txt"))
    args = ap.parse_args()
    g = Gen(args.seed, args.prose)
    k = lambda kb: int(kb * 1000 * args.scale)
    cjk = ["Han", "Hiragana", "Katakana", "Hangul"]
    world = ["Arabic", "Hebrew", "Devanagari", "Bengali", "Tamil", "Telugu", "Thai", "Lao", "Khmer", "Myanmar",
             "Georgian", "Armenian", "Ethiopic", "Cyrillic", "Greek", "Latin", "Tibetan", "Sinhala", "Gujarati",
             "Gurmukhi", "Malayalam", "Kannada", "Oriya", "Syriac", "Thaana", "Cherokee", "Canadian_Aboriginal",
             "Mongolian", "Tifinagh", "Runic", "Ogham", "Gothic", "Cuneiform", "Egyptian_Hieroglyphs", "Adlam"]
    categories = {
        "prose": g.prose_texts(k(200)),
        "code": g.code_texts(k(150)),
        "numbers": g.number_texts(k(80)),
        "whitespace": g.whitespace_texts(k(70)),
        "cjk": g.script_texts(["zh", "ja", "ko"], cjk, k(200)),
        "scripts": g.script_texts([l for l in SENTENCES if l not in ("zh", "ja", "ko")], world, k(220)),
        "marks_emoji": g.marks_emoji_texts(k(120)),
        "digits": g.digit_texts(k(70)),
        "random": g.random_texts(k(150)),
        "mixed": g.mixed_texts(k(100)),
        "long": g.long_texts(k(120)),
    }
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for name, texts in categories.items():
        for t in texts:
            assert "\u241e" not in t and not any(0xD800 <= ord(c) <= 0xDFFF for c in t), name
        data = SEP.join(texts).encode("utf-8")
        with open(os.path.join(args.out, name + ".txt"), "wb") as f:
            f.write(data)
        total += len(data)
        print(f"{name}.txt: {len(texts)} texts, {len(data)} bytes")
    print(f"total {total} bytes")

    # Oracle for decode_text: what Python's bytes.decode("utf-8", errors="replace") (Hugging Face's
    # decode) makes of byte strings with invalid UTF-8.
    pieces = [b"\x80", b"\xbf", b"\xc0\xaf", b"\xc2", b"\xdf", b"\xe0\x80", b"\xe0\xa0", b"\xe2\x82",
              b"\xed\xa0\x80", b"\xed\x9f\xbf", b"\xef\xbf", b"\xf0\x8f\xbf\xbf", b"\xf0\x9f", b"\xf0\x9f\x98",
              b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5", b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff",
              "é".encode(), "中".encode(), "🙂".encode(), b"a", b" ", b"'s", b"1"]
    cases = []
    for _ in range(400):
        raw = b"".join(g.pick(pieces) for _ in range(g.n(1, 8)))
        cases.append({"bytes": raw.hex(), "replaced": raw.decode("utf-8", errors="replace").encode().hex()})
    with open(os.path.join(args.out, "utf8_replace.json"), "w") as f:
        json.dump({"oracle": "Python bytes.decode('utf-8', errors='replace')", "cases": cases}, f, indent=0)
    print(f"utf8_replace.json: {len(cases)} cases")


if __name__ == "__main__":
    sys.exit(main())
