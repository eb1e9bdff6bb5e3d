from infer.segment import MAX_BLOCK_CHARS, split_sentences


def spans_round_trip(text):
    spans = split_sentences(text)
    assert all(text[s.start:s.end] == s.text for s in spans)
    return [s.text for s in spans]


def test_abbreviations_do_not_split():
    assert spans_round_trip("The U.S. envoy met Dr. Kim on Monday. Talks went on.") == [
        "The U.S. envoy met Dr. Kim on Monday.", "Talks went on."]


def test_quotes_stay_with_their_sentence():
    assert spans_round_trip('He said: "We won the day." Then the crowd left.') == [
        'He said: "We won the day."', "Then the crowd left."]


def test_dateline_is_peeled_off():
    text = "Pyongyang, May 3 (KCNA) -- The plant was completed. Workers rejoiced."
    assert spans_round_trip(text) == ["The plant was completed.", "Workers rejoiced."]


def test_empty_and_blank():
    assert split_sentences("") == [] and split_sentences(" \n\t ") == []


def test_very_long_article_is_split_fully_and_exactly():
    sentence = "The workers of the Kim Chaek complex overfulfilled the plan, Dr. Ri said on Monday."
    text = "\n".join(" ".join([sentence] * 50) for _ in range(40))  # 2,000 sentences
    assert spans_round_trip(text) == [sentence] * 2000


def test_paragraph_breaks_split():
    assert spans_round_trip("First line without stop\nSecond line.") == ["First line without stop", "Second line."]


def unbroken_text(n_chars):
    """Words with no punctuation and no newline: scraped text that gives the splitter no break."""
    words = ["people", "leader", "harvest", "nation", "workers", "plan"]
    text = " ".join(words[i % len(words)] + str(i % 7) for i in range(n_chars // 5))
    return text[:n_chars]


def best_time(text, repeats=2):
    import time

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        split_sentences(text)
        times.append(time.perf_counter() - start)
    return min(times)


def test_text_without_sentence_breaks_is_split_in_linear_time(caplog):
    small, large = unbroken_text(50_000), unbroken_text(200_000)
    ratio = best_time(large) / best_time(small)
    # 4x the text: linear work takes ~4x; the old quadratic splitter took ~16x
    assert ratio < 9, f"200k chars took {ratio:.1f}x the time of 50k chars"
    caplog.clear()
    texts = spans_round_trip(large)
    assert len(texts) >= 50 and max(map(len, texts)) <= MAX_BLOCK_CHARS
    assert "".join(texts).replace(" ", "") == large.replace(" ", "")  # nothing lost between windows
    assert caplog.text.count("no sentence break") == 1


def test_a_run_without_any_blank_is_cut_hard():
    n = MAX_BLOCK_CHARS
    assert [(s.start, s.end) for s in split_sentences("x" * (2 * n + 10))] == [(0, n), (n, 2 * n), (2 * n, 2 * n + 10)]
