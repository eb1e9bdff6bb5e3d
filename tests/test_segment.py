from infer.segment import split_sentences


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
