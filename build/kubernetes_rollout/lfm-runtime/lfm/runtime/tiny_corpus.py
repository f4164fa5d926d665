"""Plain English text used to train the tiny model's tokenizer.

Kept as a Python module rather than a ``.txt`` data file so it ships with every
install of the package without any package-data configuration. The text is
original, varied, instruction-style prose; its only job is to give a byte-level
BPE tokenizer realistic merges for a few hundred English words.
"""

from __future__ import annotations

TEXT = """\
The morning train left the station a few minutes late, but nobody seemed to mind.
A good recipe lists every ingredient before it asks you to turn on the stove.
Write a short summary of the paragraph below in one sentence.
Explain why the sky looks blue on a clear afternoon.
The library opens at nine and closes at six, except on public holidays.
Please translate the following sentence into plain, simple English.
Rivers carry sand and small stones from the mountains down to the sea.
When you water a plant too often, its roots can begin to rot.
List three ways to save energy at home during the winter months.
The committee agreed to meet again next Tuesday to review the budget.
A bicycle chain needs a drop of oil every few weeks to stay quiet.
Answer the question using only the information in the text.
She packed a map, a flashlight, two apples and a warm sweater.
The old bridge was closed for repairs, so the bus took the long road.
Describe the steps you would take to clean a cast iron pan.
Most birds build their nests in spring, when food is easy to find.
He wrote the letter by hand because he wanted it to feel personal.
Give an example of a sentence that uses the word "although" correctly.
The museum keeps its oldest paintings in a cool, dark room.
If the water boils away, add a little more and lower the heat.
Count the number of vowels in the word "education" and explain your answer.
The farmer checked the fence after the storm and found two broken posts.
Good notes are short, clear and written soon after the meeting ends.
Why do leaves change color in the autumn? Answer in two sentences.
The children built a small boat out of cardboard and tape.
Our team fixed the bug by checking the input before saving it.
A healthy breakfast might include fruit, bread, eggs or yogurt.
Rewrite this sentence so that it sounds more polite.
The lighthouse keeper climbed the stairs every evening at sunset.
Sort the following numbers from smallest to largest: nine, two, seven, four.
The baker wakes up before dawn to prepare fresh bread for the shop.
Clouds form when warm air rises, cools and releases its moisture.
Suggest a name for a small cafe that sells tea and cakes.
The hikers rested by the lake and watched the ducks swim past.
Always read the instructions twice before you start a new project.
What is the difference between weather and climate?
The printer ran out of paper in the middle of the report.
Summarize the main idea of the story in a few words.
Bees visit thousands of flowers to make a single spoonful of honey.
The city planted new trees along the main street last year.
Check your spelling and grammar before you send an important email.
Name two animals that live in the desert and explain how they find water.
The teacher asked the class to read the first chapter by Friday.
A compass needle points north because of the earth's magnetic field.
Turn the dial slowly until you hear a soft click.
Classify each item as a fruit or a vegetable: carrot, pear, spinach, plum.
The gardener planted tomatoes, beans and a row of sunflowers.
Snow fell all night, and by morning the roads were white and silent.
Give one reason why sleep is important for learning.
The musician practiced the same song for hours until it sounded right.
To make tea, boil the water, add the leaves and wait a few minutes.
Write a friendly reply to a customer who asked about delivery times.
The moon looks different each night because we see a changing part of it.
A small mistake in the first step can cause a large error at the end.
Explain the rules of a simple game that two people can play with a coin.
The ship's captain wrote the weather in the log every hour.
Keep the receipt in case you need to return the jacket.
Which of these words is a verb: quickly, run, happy, blue?
The kitten slept in a patch of sunlight on the kitchen floor.
Good software is tested often and changed in small, careful steps.
Describe a quiet place where you like to read.
The market was busy, and the smell of fresh bread filled the air.
Paint dries faster when the room is warm and the window is open.
Convert the recipe so that it serves four people instead of two.
The students planted seeds in paper cups and watched them grow.
A clear question usually gets a clear answer.
Find the main verb in this sentence: the dog barked at the mailman.
Trains, buses and bicycles help reduce traffic in busy cities.
The storm knocked out the power, so we lit candles and played cards.
Explain how a simple lever makes lifting easier.
The report is due on Monday, so let us finish the draft today.
Fresh water is precious, so turn off the tap while you brush your teeth.
Write a haiku about the first day of spring.
The doctor told him to drink more water and rest for a few days.
Volcanoes can create new land when their lava cools and hardens.
Make a short packing list for a weekend trip to the mountains.
The shopkeeper counted the coins twice before closing the register.
Rain on a tin roof can sound like a thousand tiny drums.
Explain what a budget is to a ten year old.
The puzzle had a thousand pieces, and half of them were blue sky.
Wash your hands with soap for at least twenty seconds.
Identify the subject of this sentence: the tall tree swayed in the wind.
The pilot announced that the flight would land twenty minutes early.
Old letters and photographs can tell us how people lived long ago.
Suggest three questions to ask at the end of a job interview.
The river froze in January, and people skated on it for weeks.
A map is only useful if you know where you are standing.
Describe the sound of the ocean to someone who has never heard it.
The volunteers collected litter from the beach on Saturday morning.
Sharpen the pencil, then draw a light line before you cut the paper.
What happens to ice when you leave it in a warm room?
The new bakery on the corner sells bread, rolls and small pies.
A strong password is long and hard for others to guess.
Rewrite the paragraph in the past tense.
The choir sang softly while the audience found their seats.
Plants need light, water, air and good soil to grow well.
Give a short definition of the word "habit".
The owl hunts at night and sleeps in the hollow of an old oak.
Measure twice and cut once, as the carpenter always says.
Explain why it is a good idea to back up your files.
The family drove to the coast and ate lunch beside the harbor.
Wind turbines turn moving air into electricity.
List the days of the week in reverse order.
The runner tied her shoes, stretched, and set off down the path.
A calm voice can make a difficult conversation easier.
Write two sentences about your favorite season and why you like it.
The clock in the hall chimed twelve times at midnight.
Soup tastes better the next day, after the flavors have mixed.
Which planet is closest to the sun?
The painter mixed yellow and blue to make a bright green.
Close the window before you leave so the rain cannot get in.
Explain the purpose of a table of contents in a book.
The fox crept along the hedge, watching the chickens in the yard.
Careful listening is the first step toward a good answer.
Turn this list of facts into a short paragraph.
The festival ended with music, dancing and a sky full of lanterns.
Salt helps preserve food by drawing out the water.
Describe how to plant a tree in five simple steps.
The engineer checked every bolt on the bridge before it opened.
A short walk after dinner can help you sleep better.
Answer yes or no, then give one sentence to explain your answer.
The cat knocked a cup off the table and looked very pleased.
Mountains are colder at the top because the air is thinner.
Offer a kind reply to a friend who failed an exam.
The postman delivered three parcels and a postcard from Spain.
Numbers, letters and symbols make a password stronger.
Explain what happens during a solar eclipse.
The village held a market every Thursday in the square.
Keep your answers short, clear and honest.
Write a title for a story about a lost dog that finds its way home.
The waves grew taller as the wind picked up in the afternoon.
A good teacher asks questions that help students think for themselves.
Give the opposite of each word: hot, early, full, light.
The carpenter sanded the table until it felt smooth as glass.
Ice floats because it is less dense than liquid water.
Suggest a healthy snack that is easy to carry on a long walk.
The orchestra tuned their instruments while the lights dimmed.
Before you start, make sure you have everything you need.
Explain why we see lightning before we hear thunder.
The robot followed the black line on the floor to the charging dock.
The gardener saved seeds from the best plants for next year.
Explain how to read a bus timetable to someone new in town.
A warm coat, dry socks and a hot drink make a cold day pleasant.
The student wrote each new word on a card and reviewed them every night.
Describe what a good neighbor does.
The scientist repeated the test three times to be sure of the result.
Fold the paper in half, then in half again, and cut along the edge.
Why should you stretch before and after exercise?
The lamp flickered, so she replaced the bulb with a new one.
Thank you for your question; here is a short and simple answer.
"""


def lines() -> list[str]:
    """The corpus as a list of non-empty lines."""
    return [line for line in TEXT.splitlines() if line.strip()]
